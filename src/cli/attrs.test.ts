import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { AttributeSet } from "../cookbooks/precedence.ts";
import { isGalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import { attrsCommand, makeAttrsCommand } from "./attrs.ts";

/** Runs a command with its stdout captured. */
async function capture(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write;
  let out = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await run();
    return { code, out };
  } finally {
    process.stdout.write = write;
  }
}

// a hand-made set: this test is about formatting, the merging is tested in precedence.test.ts
function handMade(): AttributeSet {
  const set = new AttributeSet();
  const lines: Record<string, number> = { app: 1, "app.port": 2, "app.workers": 3, db: 4, "db.password": 5 };
  const line = (keys: readonly string[]) => lines[keys.join(".")];
  set.add(
    {
      level: "default",
      label: "cookbook web: attributes/default.yaml",
      file: "/k/web/attributes/default.yaml",
      line,
    },
    { app: { port: 8080, workers: 2 }, db: { password: "changeme" } },
  );
  set.add({ level: "run", label: "--attrs prod.yaml", file: "/k/prod.yaml", line }, { app: { port: 8443 } });
  set.add(
    { level: "run", label: "--attrs secrets.yaml", sensitive: true },
    { db: { password: "hunter2-secret" } },
  );
  // a recipe copied the secret into a value that is not itself sensitive
  set.add(
    { level: "override", label: "recipe web::default" },
    { db: { url: "postgres://app:hunter2-secret@db" } },
  );
  return set;
}

test("galley attrs prints the merged attributes as YAML, secrets redacted, and passes its options to the provider", async () => {
  const calls: unknown[] = [];
  const command = makeAttrsCommand(async (runList, options) => {
    const { secrets, ...rest } = options;
    calls.push({ runList, options: rest, keyReader: typeof secrets?.key });
    return handMade();
  });
  const { code, out } = await capture(() =>
    command.run({ cookbooks: "kitchen/cookbooks", attrs: ["prod.yaml"], json: false }, ["web"]),
  );
  assert.equal(code, 0);
  assert.deepEqual(calls, [
    {
      runList: ["web"],
      options: { cookbooksDir: path.resolve("kitchen/cookbooks"), attrs: ["prod.yaml"] },
      keyReader: "function",
    },
  ]);
  assert.equal(
    out,
    [
      "app:",
      "  port: 8443",
      "  workers: 2",
      "db:",
      "  password: (sensitive)",
      "  url: postgres://app:(sensitive)@db",
      "",
    ].join("\n"),
  );
});

test("galley attrs --json prints the redacted attributes as JSON", async () => {
  const command = makeAttrsCommand(async () => handMade());
  const { out } = await capture(() => command.run({ cookbooks: "cookbooks", json: true }, ["web"]));
  assert.deepEqual(JSON.parse(out), {
    app: { port: 8443, workers: 2 },
    db: { password: "(sensitive)", url: "postgres://app:(sensitive)@db" },
  });
});

test("galley attrs --explain prints every layer and the winner; --json prints the explanation", async () => {
  const command = makeAttrsCommand(async () => handMade());
  const text = await capture(() =>
    command.run({ cookbooks: "cookbooks", json: false, explain: "app.port" }, ["web"]),
  );
  assert.equal(
    text.out,
    [
      "app.port = 8443  (won: run --attrs prod.yaml:2)",
      "  default  cookbook web: attributes/default.yaml:2  8080",
      "  run      --attrs prod.yaml:2                      8443  ← wins",
      "",
    ].join("\n"),
  );
  const secret = await capture(() =>
    command.run({ cookbooks: "cookbooks", json: false, explain: "db" }, ["web"]),
  );
  assert.ok(!secret.out.includes("hunter2"), secret.out);
  assert.match(secret.out, /\n {4}db\.password +\(sensitive\) +run --attrs secrets\.yaml\n/);
  const json = await capture(() =>
    command.run({ cookbooks: "cookbooks", json: true, explain: "app.port" }, ["web"]),
  );
  const parsed = JSON.parse(json.out);
  assert.equal(parsed.value, 8443);
  assert.deepEqual(
    parsed.contributions.map((c: { level: string; line: number; status: string }) => [
      c.level,
      c.line,
      c.status,
    ]),
    [
      ["default", 2, "overridden"],
      ["run", 2, "wins"],
    ],
  );
});

test("galley attrs --explain of a key nothing sets says so and names the keys that are set", async () => {
  const command = makeAttrsCommand(async () => handMade());
  const { code, out } = await capture(() =>
    command.run({ cookbooks: "cookbooks", json: false, explain: "app.prot" }, ["web"]),
  );
  assert.equal(code, 0);
  assert.equal(out, "app.prot is not set: no level sets it\nhint: keys under app: port, workers\n");
});

test("attrsCommand reads real cookbooks, --attrs files and facts, with file and line", async () => {
  const dir = await tempDir();
  const web = path.join(dir, "cookbooks", "web");
  await fs.mkdir(path.join(web, "attributes"), { recursive: true });
  await fs.mkdir(path.join(web, "recipes"));
  await fs.writeFile(path.join(web, "cookbook.yaml"), "name: web\nversion: 1.0.0\n");
  await fs.writeFile(path.join(web, "recipes", "default.ts"), "export default () => {};\n");
  await fs.writeFile(path.join(web, "attributes", "default.yaml"), "app:\n  port: 8080\n  workers: 2\n");
  await fs.writeFile(path.join(dir, "prod.yaml"), "# production\napp:\n  port: 8443\n");
  const cookbooks = path.join(dir, "cookbooks");
  const prod = path.join(dir, "prod.yaml");
  const { out } = await capture(() =>
    attrsCommand.run({ cookbooks, attrs: [prod], json: false, explain: "app.port" }, ["web"]),
  );
  // the columns' width depends on the temp dir's name: compare with runs of spaces folded
  assert.equal(
    out.replace(/ {2,}/g, "  "),
    [
      `app.port = 8443  (won: run --attrs ${prod}:3)`,
      "  default  cookbook web: attributes/default.yaml:2  8080",
      `  run  --attrs ${prod}:3  8443  ← wins`,
      "",
    ].join("\n"),
  );
  const hostname = await capture(() =>
    attrsCommand.run({ cookbooks, attrs: [], json: true, explain: "hostname" }, ["web"]),
  );
  assert.equal(JSON.parse(hostname.out).winner.label, "facts");
  await assert.rejects(
    attrsCommand.run({ cookbooks, json: false }, []),
    (error) => isGalleyError(error) && error.code === "USAGE",
  );
});
