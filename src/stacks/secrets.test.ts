import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { Secrets, withSecrets } from "../core/secrets.ts";
import { tempDir } from "../resources/testing.ts";
import { encrypt } from "../secrets/vault.ts";
import { loadStack } from "./stack.ts";

// A stack's `secrets:` files decrypted and merged over its attributes, `{ secret: … }` environment
// values filled in, every value registered in the run that loads it.

const key = Buffer.from("a-test-key-not-a-secret-anywhere");
const password = "pw-6f1c2e9a-not-in-clear";

const stackText = `name: web
secrets: [secrets.yaml]
attributes: { db: { name: hello, password: overridden-by-the-file } }
layers:
  - name: app
    environment: { TOKEN: { secret: api.token } }
instances:
  - { name: app1, layers: [app] }
apps:
  - name: hello
    layers: [app]
    source: { type: git, url: ../app.git }
    environment:
      PORT: "3000"
      DB_PASSWORD: { secret: db.password }
    release:
      service:
        exec: node server.js
        environment: { DB_PORT: { secret: db.port } }
`;

async function kitchen(
  text = stackText,
  secrets = `db: { password: ${password}, port: 55432 }\napi: { token: tok-0a9b8c7d }\n`,
) {
  const dir = await tempDir("galley-stack-secrets-");
  await fs.writeFile(path.join(dir, "secrets.yaml"), encrypt(secrets, key));
  const file = path.join(dir, "web.yaml");
  await fs.writeFile(file, text);
  return file;
}

test("stack secrets: merged over the attributes, environment values filled in, all registered in the run", async () => {
  const file = await kitchen();
  const run = new Secrets();
  const stack = await withSecrets(run, () => loadStack(file, { key: async () => key }));
  assert.deepEqual(stack.attributes, {
    db: { name: "hello", password, port: 55432 },
    api: { token: "tok-0a9b8c7d" },
  });
  assert.equal(stack.apps[0]!.environment.DB_PASSWORD, password);
  assert.equal(stack.apps[0]!.environment.PORT, "3000");
  assert.equal(stack.apps[0]!.release!.service!.environment.DB_PORT, "55432");
  assert.equal(stack.layers[0]!.environment.TOKEN, "tok-0a9b8c7d");
  assert.equal(
    run.scrub(`DB_PASSWORD=${password} TOKEN=tok-0a9b8c7d`),
    "DB_PASSWORD=(sensitive) TOKEN=(sensitive)",
  );
  // registered in the run that loaded it, not elsewhere
  assert.equal(new Secrets().scrub(password), password);
});

test("stack secrets: no key names the file, the line and what to pass", async () => {
  const file = await kitchen();
  await assert.rejects(loadStack(file), (error: Error & { code: string; hint: string }) => {
    assert.equal(error.code, "SECRET_INVALID");
    assert.match(
      error.message,
      new RegExp(`${file}:2: secrets: secrets.yaml is encrypted, and no key was given`),
    );
    assert.match(error.hint, /--key-file FILE, or set GALLEY_SECRET_KEY_FILE/);
    return true;
  });
});

test("stack secrets: a wrong key stops the load without showing content", async () => {
  const file = await kitchen();
  await assert.rejects(
    loadStack(file, { key: async () => Buffer.from("another-key") }),
    (error: Error & { code: string }) => {
      assert.equal(error.code, "SECRET_INVALID");
      assert.match(error.message, /secrets\.yaml: cannot decrypt: wrong key/);
      return true;
    },
  );
});

test("stack secrets: an environment value naming a missing attribute names the field and its line", async () => {
  const file = await kitchen(stackText.replace("{ secret: db.password }", "{ secret: db.passwd }"));
  await assert.rejects(
    loadStack(file, { key: async () => key }),
    (error: Error & { code: string; hint: string }) => {
      assert.equal(error.code, "STACK_INVALID");
      assert.match(
        error.message,
        new RegExp(
          `${file}:15: apps\\.0\\.environment\\.DB_PASSWORD: the secret db\\.passwd is not an attribute of the stack`,
        ),
      );
      assert.match(error.hint, /secrets\.yaml/);
      return true;
    },
  );
});

test("stack secrets: a mapping is not a value", async () => {
  const file = await kitchen(stackText.replace("{ secret: db.password }", "{ secret: db }"));
  await assert.rejects(loadStack(file, { key: async () => key }), /the secret db is not a string or number/);
});

test("stack secrets: decrypt false (commands that only read the store) needs no key and shows no value", async () => {
  const file = await kitchen();
  const stack = await loadStack(file, { decrypt: false });
  assert.equal(stack.apps[0]!.environment.DB_PASSWORD, "(sensitive)");
  assert.equal(
    stack.attributes.db && (stack.attributes.db as { password: string }).password,
    "overridden-by-the-file",
  );
});

test("stack secrets: a clear value named by { secret: … } is registered too", async () => {
  const file = await kitchen(
    stackText
      .replace("secrets: [secrets.yaml]\n", "")
      .replace("{ secret: api.token }", "{ secret: db.name }")
      .replace("{ secret: db.port }", "{ secret: db.name }"),
  );
  const run = new Secrets();
  const stack = await withSecrets(run, () => loadStack(file));
  assert.equal(stack.apps[0]!.environment.DB_PASSWORD, "overridden-by-the-file");
  assert.equal(run.scrub("overridden-by-the-file"), "(sensitive)");
});
