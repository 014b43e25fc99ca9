import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";

/**
 * The reference workload for N: N/10 directories, N files with fixed content, N/2 templated
 * files and N/10 symlinks, under one root directory (1701 resources at N = 1000). With `secrets`,
 * that many `!sensitive` attributes too, and every tenth template holds the base64 Basic auth of
 * one of them (the cost of recognising and scrubbing secrets).
 */
export async function writeWorkload(
  kitchen: string,
  target: string,
  n: number,
  secrets = 0,
): Promise<number> {
  const cookbook = path.join(kitchen, "cookbooks", "bench");
  await fs.mkdir(path.join(cookbook, "recipes"), { recursive: true });
  await fs.mkdir(path.join(cookbook, "templates"), { recursive: true });
  await fs.writeFile(
    path.join(cookbook, "cookbook.yaml"),
    "name: bench\nversion: 1.0.0\ndescription: benchmark workload\n",
  );
  await fs.writeFile(
    path.join(cookbook, "templates", "item.conf.eta"),
    `# item <%= it.index %>\nname = <%= it.name %>\nport = <%= it.port %>\n${secrets > 0 ? "<% if (it.auth) { -%>\nauth = Basic <%= it.auth %>\n<% } -%>\n" : ""}<% for (const tag of it.tags) { -%>\ntag = <%= tag %>\n<% } -%>\n`,
  );
  const recipe = `export default function (r) {
  const root = ${JSON.stringify(target)};
  const n = ${n};
  const dirs = n / 10;
${secrets > 0 ? `  const secrets = r.attrs.bench.secrets;\n  const auth = (i) => (i % 10 === 0 ? Buffer.from("bench:" + secrets[i % secrets.length]).toString("base64") : "");\n` : ""}  r.directory(root, { mode: "0755" });
  for (let d = 0; d < dirs; d++) r.directory(root + "/d" + d, { mode: "0755" });
  for (let i = 0; i < n; i++) r.file(root + "/d" + (i % dirs) + "/file" + i + ".txt", { content: "fixed content of file " + i + "\\n".repeat(1), mode: "0644" });
  for (let i = 0; i < n / 2; i++) {
    r.template(root + "/d" + (i % dirs) + "/tmpl" + i + ".conf", {
      source: "item.conf.eta",
      variables: { index: i, name: "item-" + i, port: 8000 + i, tags: ["a", "b"]${secrets > 0 ? ", auth: auth(i)" : ""} },
      mode: "0644",
    });
  }
  for (let l = 0; l < n / 10; l++) r.link(root + "/link" + l, { to: root + "/d" + l + "/file" + l + ".txt" });
}
`;
  await fs.writeFile(path.join(cookbook, "recipes", "default.ts"), recipe);
  if (secrets > 0) {
    // fixed values, so that runs compare
    const values = Array.from({ length: secrets }, (_, i) =>
      createHash("sha256").update(`bench secret ${i}`).digest("base64url").slice(0, 24),
    );
    await fs.mkdir(path.join(cookbook, "attributes"), { recursive: true });
    await fs.writeFile(
      path.join(cookbook, "attributes", "default.yaml"),
      `bench:\n  secrets:\n${values.map((value) => `    - !sensitive ${value}\n`).join("")}`,
    );
  }
  return 1 + n / 10 + n + n / 2 + n / 10;
}
