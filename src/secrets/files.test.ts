import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import {
  createKeyFile,
  decryptSecretsFile,
  editSecretsFile,
  encryptSecretsFile,
  readSecretsFile,
  writeSecretsFile,
} from "./files.ts";
import { isEncrypted, readKey } from "./vault.ts";

// The functions behind `galley secrets`, called directly as an HTTP API would: plain arguments in, data out.

const modeOf = async (file: string) => (await fs.stat(file)).mode & 0o777;

async function setup() {
  const dir = await tempDir("galley-secrets-files-");
  const keyFile = path.join(dir, "secret.key");
  assert.deepEqual(await createKeyFile(keyFile), { keyFile });
  return { dir, keyFile, key: await readKey({ keyFile, env: {} }) };
}

test("createKeyFile: 0600, and never replaces a key", async () => {
  const { keyFile } = await setup();
  assert.equal(await modeOf(keyFile), 0o600);
  const before = await fs.readFile(keyFile, "utf8");
  await assert.rejects(
    createKeyFile(keyFile),
    (e: { code: string; message: string }) =>
      e.code === "USAGE" && /already exists: a key is never overwritten/.test(e.message),
  );
  assert.equal(await fs.readFile(keyFile, "utf8"), before);
  assert.deepEqual((await fs.readdir(path.dirname(keyFile))).sort(), ["secret.key"]);
});

test("encrypt, read, decrypt: round trip; the encrypted file keeps its mode, the clear one is 0600", async () => {
  const { dir, key } = await setup();
  const file = path.join(dir, "db.yaml");
  await fs.writeFile(file, "db:\n  password: hunter22\n", { mode: 0o640 });
  await fs.chmod(file, 0o640);
  assert.deepEqual(await encryptSecretsFile(file, key), { file });
  const sealed = await fs.readFile(file, "utf8");
  assert.ok(isEncrypted(sealed) && !sealed.includes("hunter22"));
  assert.equal(await modeOf(file), 0o640);
  await assert.rejects(encryptSecretsFile(file, key), { code: "SECRET_INVALID" });
  assert.equal(await readSecretsFile(file, key), "db:\n  password: hunter22\n");
  const out = path.join(dir, "clear.yaml");
  assert.deepEqual(await decryptSecretsFile(file, key, out), { file, out });
  assert.equal(await fs.readFile(out, "utf8"), "db:\n  password: hunter22\n");
  assert.equal(await modeOf(out), 0o600);
  assert.deepEqual((await fs.readdir(dir)).sort(), ["clear.yaml", "db.yaml", "secret.key"], "no temp left");
});

test("encryptSecretsFile refuses invalid attributes and leaves the clear file as it was", async () => {
  const { dir, key } = await setup();
  const file = path.join(dir, "bad.yaml");
  await fs.writeFile(file, "- a list\n");
  await assert.rejects(encryptSecretsFile(file, key), (e: { hint?: string }) =>
    /galley secrets encrypt/.test(e.hint ?? ""),
  );
  assert.equal(await fs.readFile(file, "utf8"), "- a list\n");
});

test("editSecretsFile: the editor changes the draft, the file is encrypted again; a bad edit changes nothing", async () => {
  const { dir, key } = await setup();
  const file = path.join(dir, "app.yaml");
  await writeSecretsFile(file, key, "token: abcdef\n");
  let draftSeen = "";
  const result = await editSecretsFile(file, key, {
    name: "test-editor",
    async edit(draft) {
      draftSeen = draft;
      assert.equal(await fs.readFile(draft, "utf8"), "token: abcdef\n");
      assert.equal(await modeOf(draft), 0o600);
      await fs.writeFile(draft, "token: ghijkl\n");
      return 0;
    },
  });
  assert.deepEqual(result, { file, changed: true });
  assert.equal(await readSecretsFile(file, key), "token: ghijkl\n");
  await assert.rejects(fs.stat(path.dirname(draftSeen)), { code: "ENOENT" }, "the draft is gone");
  // unchanged
  assert.deepEqual(await editSecretsFile(file, key, { name: "noop", edit: async () => 0 }), {
    file,
    changed: false,
  });
  // an invalid edit: the file stays, the draft is kept and named
  const sealed = await fs.readFile(file, "utf8");
  await assert.rejects(
    editSecretsFile(file, key, {
      name: "bad",
      async edit(draft) {
        draftSeen = draft;
        await fs.writeFile(draft, "- not a mapping\n");
        return 0;
      },
    }),
    (e: { message: string; hint?: string }) =>
      /was not changed/.test(e.message) && (e.hint ?? "").includes(draftSeen),
  );
  assert.equal(await fs.readFile(file, "utf8"), sealed);
  await fs.rm(path.dirname(draftSeen), { recursive: true });
  // a failing editor
  await assert.rejects(
    editSecretsFile(file, key, { name: "broken", edit: async () => 3 }),
    (e: { code: string; message: string }) =>
      e.code === "EXEC_FAILED" && /the editor \(broken\) exited with status 3/.test(e.message),
  );
  assert.equal(await fs.readFile(file, "utf8"), sealed);
});
