import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";

/** Every `size`-character piece of `text`: none may appear in an output. */
function pieces(text: string, size = 6): string[] {
  return Array.from({ length: text.length - size + 1 }, (_, i) => text.slice(i, i + size));
}

function assertHidden(output: string, secrets: string[], what: string) {
  for (const secret of secrets) {
    const shown = pieces(secret).find((piece) => output.includes(piece));
    assert.equal(shown, undefined, `${what} shows "${shown}" of ${secret}:\n${output}`);
  }
}

test("secrets: values derived from a secret (Basic auth base64, upper case) never show in plan, apply, compile or errors", async () => {
  const target = await tempDir();
  const password = `pw-${randomBytes(9).toString("hex")}-Zq`;
  const basic = Buffer.from(`admin:${password}`).toString("base64");
  const digest = createHash("sha256").update(password).digest("hex");
  const at = (name: string) => JSON.stringify(path.join(target, name));
  const root = await makeKitchen({
    web: {
      templates: { "auth.conf.eta": "[api]\nAuthorization: Basic <%= it.auth %>\n" },
      recipes: {
        default: recipe(`
          const { sensitive } = await import("galley");
          const { createHash } = await import("node:crypto");
          const password = r.attrs.api.password;
          const basic = Buffer.from("admin:" + password).toString("base64");
          r.template(${at("auth.conf")}, { source: "auth.conf.eta", variables: { auth: basic } });
          r.file(${at("auth.header")}, { content: "Authorization: Basic " + basic + "\\n" });
          r.file(${at("token.env")}, { content: "TOKEN=" + password.toUpperCase() + "\\n" });
          r.file(${at("token.sha")}, { content: sensitive(createHash("sha256").update(password).digest("hex")) });
          r.file(${at("plain")}, { content: "nothing secret\\n" });`),
        command: recipe(`r.execute("false " + r.attrs.api.password.toUpperCase());`),
        throws: recipe(
          `throw new Error("cannot reach the api with " + Buffer.from("admin:" + r.attrs.api.password).toString("base64"));`,
        ),
      },
    },
  });
  // the secret comes from an encrypted attributes file
  const key = path.join(root, "galley.key");
  assert.equal(cli(["secrets", "keygen", "--key-file", key], root).code, 0);
  await fs.writeFile(path.join(root, "secrets.yaml"), `api:\n  password: ${password}\n`);
  assert.equal(cli(["secrets", "encrypt", "secrets.yaml", "--key-file", key], root).code, 0);
  const env = { GALLEY_SECRET_KEY_FILE: key };
  const hidden = [password, password.toUpperCase(), basic.slice(8, -3), digest];
  const state = await tempDir();
  const run = (args: string[]) => cli([...args, "--attrs", "secrets.yaml", "--state-dir", state], root, env);

  const compiled = cli(["compile", "web", "--attrs", "secrets.yaml", "--json"], root, env);
  assert.equal(compiled.code, 0, compiled.stderr);
  assertHidden(compiled.stdout, hidden, "compile --json");
  const sensitive = Object.fromEntries(
    JSON.parse(compiled.stdout).resources.map((r: { id: string; sensitive?: boolean }) => [
      path.basename(r.id.slice(0, -1)),
      r.sensitive === true,
    ]),
  );
  assert.deepEqual(sensitive, {
    "auth.conf": true,
    "auth.header": true,
    "token.env": true,
    "token.sha": true,
    plain: false,
  });

  const plan = run(["plan", "web"]);
  assert.equal(plan.code, 0, plan.stderr);
  assertHidden(plan.stdout + plan.stderr, hidden, "plan");
  for (const name of ["auth.conf", "auth.header", "token.env"]) {
    assert.match(
      plan.stdout,
      new RegExp(
        `${name}\\][^\\n]*\\n\\s+ensure: absent → file\\n\\s+content: \\(none\\) → \\(sensitive\\)\\n`,
      ),
    );
  }
  assert.match(plan.stdout, /\+nothing secret/, "a resource holding no secret still shows its diff");
  const planJson = run(["plan", "web", "--json"]);
  assert.equal(planJson.code, 0, planJson.stderr);
  assertHidden(planJson.stdout, hidden, "plan --json");

  const applied = run(["apply", "web", "--json"]);
  assert.equal(applied.code, 0, applied.stderr);
  assertHidden(applied.stdout + applied.stderr, hidden, "apply --json");
  const report = JSON.parse(applied.stdout);
  for (const resource of report.resources) {
    const content = resource.diff.find((change: { property: string }) => change.property === "content");
    if (!resource.id.endsWith("/plain]")) assert.equal(content.to, "(sensitive)", resource.id);
  }
  assert.equal(
    await fs.readFile(path.join(target, "auth.conf"), "utf8"),
    `[api]\nAuthorization: Basic ${basic}\n`,
  );
  assert.equal(
    await fs.readFile(path.join(target, "auth.header"), "utf8"),
    `Authorization: Basic ${basic}\n`,
  );
  assert.equal(
    await fs.readFile(path.join(target, "token.env"), "utf8"),
    `TOKEN=${password.toUpperCase()}\n`,
  );
  assert.equal(await fs.readFile(path.join(target, "token.sha"), "utf8"), digest);

  // a changed file: the diff of the new content is hidden too
  await fs.writeFile(path.join(target, "token.env"), "TOKEN=old\n");
  const again = run(["apply", "web"]);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /token\.env\][^\n]*\n\s+content: \(sensitive\) → \(sensitive\)\n/);
  assertHidden(again.stdout + again.stderr, hidden, "apply");

  // errors quoting a derived value: a failing command, and a recipe that throws
  for (const args of [
    ["apply", "web::command"],
    ["apply", "web::command", "--json"],
    ["plan", "web::throws"],
  ]) {
    const failed = run(args);
    assert.notEqual(failed.code, 0, failed.stdout);
    assertHidden(failed.stdout + failed.stderr, hidden, args.join(" "));
  }
  const thrown = run(["apply", "web::throws"]);
  assert.match(thrown.stderr, /error\[RECIPE_FAILED\]: .*cannot reach the api with YWRtaW46\(sensitive\)/);
});
