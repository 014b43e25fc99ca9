import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";

test("attributes: precedence default < --attrs < r.override < facts, and attrs --explain names each level", async () => {
  const target = await tempDir();
  const root = await makeKitchen({
    base: { attributes: { "default.yaml": "app:\n  port: 80\n  workers: 2\n  name: demo\n" } },
    web: {
      depends: { base: "*" },
      attributes: { "default.yaml": "app:\n  workers: 4\n" },
      recipes: {
        default: recipe(`
          r.override({ app: { name: "overridden" } });
          r.file(${JSON.stringify(`${target}/conf`)}, { content: JSON.stringify(r.attrs.app) + " " + r.attrs.hostname });`),
      },
    },
  });
  await fs.writeFile(path.join(root, "prod.yaml"), "app:\n  port: 8443\n  name: prod\n");
  const applied = cli(
    ["apply", "web", "--attrs", "prod.yaml", "--state-dir", await tempDir(), "--json"],
    root,
  );
  assert.equal(applied.code, 0, applied.stderr);
  const conf = await fs.readFile(path.join(target, "conf"), "utf8");
  const [app, hostname] = conf.split(" ");
  assert.deepEqual(JSON.parse(app!), { port: 8443, workers: 4, name: "overridden" });
  assert.ok(hostname && hostname !== "undefined", "facts are automatic attributes at the top level");

  const explained = cli(["attrs", "web", "--attrs", "prod.yaml", "--explain", "app.name"], root);
  assert.equal(explained.code, 0, explained.stderr);
  assert.match(explained.stdout, /^app\.name = "overridden"/);
  assert.match(explained.stdout, /default\s+cookbook base: attributes\/default\.yaml:4\s+"demo"/);
  assert.match(explained.stdout, /run\s+--attrs prod\.yaml:3\s+"prod"/);
  assert.match(
    explained.stdout,
    /override\s+recipe web::default \(cookbooks\/web\/recipes\/default\.ts:3\)\s+"overridden"\s+← wins/,
  );

  const json = JSON.parse(cli(["attrs", "web", "--attrs", "prod.yaml", "--json"], root).stdout);
  assert.equal(json.app.workers, 4);
});

test("attributes: r.attrs is read-only; assigning to it says to use r.override", async () => {
  const root = await makeKitchen({ web: { recipes: { default: recipe(`r.attrs.app = 1;`) } } });
  const result = cli(["compile", "web"], root);
  assert.equal(result.code, 2);
  assert.match(result.stderr, /error\[RECIPE_FAILED\]: recipe web::default failed at .*default\.ts:2/);
  assert.match(result.stderr, /hint: r\.attrs is read-only: set attributes with r\.override/);
});

test("secrets: an encrypted --attrs file decrypts with the key; its values never appear in output", async () => {
  const target = await tempDir();
  const root = await makeKitchen({
    web: {
      templates: { "db.conf.eta": "url = postgres://app:<%= it.password %>@db/app\n" },
      recipes: {
        default: recipe(`
          r.template(${JSON.stringify(`${target}/db.conf`)}, { source: "db.conf.eta", variables: { password: r.attrs.db.password } });
          r.execute("false " + r.attrs.db.password, { creates: ${JSON.stringify(`${target}/never`)} , onlyIf: "test -e ${target}/db.conf" });`),
      },
    },
  });
  const key = path.join(root, "galley.key");
  assert.equal(cli(["secrets", "keygen", "--key-file", key], root).code, 0);
  const secretFile = path.join(root, "secrets.yaml");
  const password = "s3cr3t-Passw0rd";
  await fs.writeFile(secretFile, `db:\n  password: ${password}\n`);
  const encrypted = cli(["secrets", "encrypt", secretFile, "--key-file", key], root);
  assert.equal(encrypted.code, 0, encrypted.stderr);
  assert.doesNotMatch(await fs.readFile(secretFile, "utf8"), /s3cr3t/);

  // no key: a clear error, nothing applied
  const noKey = cli(["apply", "web", "--attrs", "secrets.yaml", "--state-dir", await tempDir()], root, {
    GALLEY_SECRET_KEY_FILE: "",
  });
  assert.equal(noKey.code, 2);
  assert.match(noKey.stderr, /error\[SECRET_INVALID\]/);
  await assert.rejects(fs.stat(path.join(target, "db.conf")));

  // a wrong key: refused, nothing applied
  const wrongKey = path.join(root, "wrong.key");
  assert.equal(cli(["secrets", "keygen", "--key-file", wrongKey], root).code, 0);
  const wrong = cli(
    ["apply", "web", "--attrs", "secrets.yaml", "--key-file", wrongKey, "--state-dir", await tempDir()],
    root,
  );
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /error\[SECRET_INVALID\]: .*secrets\.yaml: cannot decrypt: wrong key/);
  await assert.rejects(fs.stat(path.join(target, "db.conf")));

  // the right key: applied; the plan, the report and the error of the failing command never show it
  const state = await tempDir();
  const plan = cli(["plan", "web", "--attrs", "secrets.yaml", "--key-file", key, "--state-dir", state], root);
  assert.equal(plan.code, 0, plan.stderr);
  assert.doesNotMatch(plan.stdout + plan.stderr, /s3cr3t/);
  const applied = cli(["apply", "web", "--attrs", "secrets.yaml", "--state-dir", state, "--json"], root, {
    GALLEY_SECRET_KEY_FILE: key,
  });
  assert.equal(
    await fs.readFile(path.join(target, "db.conf"), "utf8"),
    `url = postgres://app:${password}@db/app\n`,
  );
  assert.doesNotMatch(applied.stdout + applied.stderr, /s3cr3t/);
  const report = JSON.parse(applied.stdout);
  assert.equal(report.resources.find((r: { id: string }) => r.id.startsWith("execute")).status, "failed");
  const compiled = cli(["compile", "web", "--attrs", "secrets.yaml", "--key-file", key, "--json"], root);
  assert.equal(compiled.code, 0, compiled.stderr);
  assert.doesNotMatch(compiled.stdout, /s3cr3t/);
  const attrs = cli(["attrs", "web", "--attrs", "secrets.yaml", "--key-file", key], root);
  assert.match(attrs.stdout, /password: \(sensitive\)/);
  assert.doesNotMatch(attrs.stdout, /s3cr3t/);
});

test("attributes: values marked !sensitive (YAML) or sensitive() (TypeScript) never appear in output", async () => {
  const target = await tempDir();
  const root = await makeKitchen({
    web: {
      attributes: {
        "default.yaml": "web:\n  token: !sensitive tok-4242-yaml\n",
        "extra.ts": `import { sensitive } from "galley";\nexport default { web: { key: sensitive("key-9999-ts") } };\n`,
      },
      recipes: {
        default: recipe(
          `r.file(${JSON.stringify(`${target}/conf`)}, { content: r.attrs.web.token + " " + r.attrs.web.key + "\\n" });`,
        ),
      },
    },
  });
  const applied = cli(["apply", "web", "--state-dir", await tempDir()], root);
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal(await fs.readFile(path.join(target, "conf"), "utf8"), "tok-4242-yaml key-9999-ts\n");
  assert.match(applied.stdout, /content: \(none\) → \(sensitive\)/);
  const json = cli(["plan", "web", "--state-dir", await tempDir(), "--json"], root);
  const attrs = cli(["attrs", "web"], root);
  const compiled = cli(["compile", "web", "--json"], root);
  for (const output of [applied.stdout, json.stdout, attrs.stdout, compiled.stdout]) {
    assert.doesNotMatch(output, /tok-4242-yaml|key-9999-ts/);
  }
  assert.match(attrs.stdout, /token: \(sensitive\)/);
});
