import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import {
  decrypt,
  encrypt,
  generateKey,
  isEncrypted,
  loadSecretAttributes,
  readKey,
  secretValues,
  vaultHeader,
} from "./vault.ts";

const secretYaml = "db:\n  password: hunter2-sekret\n  port: 5432\n";

/** Asserts that `fn` throws a GalleyError with `code` whose message matches `message`. */
async function rejects(fn: () => unknown, code: string, message: RegExp): Promise<GalleyError> {
  let caught: unknown;
  try {
    await fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof GalleyError, `expected a GalleyError, got ${String(caught)}`);
  assert.equal(caught.code, code);
  assert.match(caught.message, message);
  return caught;
}

async function keyFile(dir: string, content = `${generateKey()}\n`, mode = 0o600): Promise<string> {
  const file = path.join(dir, "key");
  await fs.writeFile(file, content, { mode });
  await fs.chmod(file, mode);
  return file;
}

/** The decoded body of an encrypted text, and a function writing a body back in the same format. */
function body(text: string): Buffer {
  return Buffer.from(text.split("\n").slice(1).join(""), "base64");
}
function withBody(text: string, data: Buffer): string {
  const b64 = data.toString("base64");
  const lines = [text.split("\n")[0]!];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return `${lines.join("\n")}\n`;
}

test("vault: round trip; text with the header, base64 lines of 76, a new salt and IV every time", () => {
  const key = generateKey();
  const text = encrypt(secretYaml, key);
  assert.ok(isEncrypted(text));
  assert.ok(!isEncrypted(secretYaml));
  const lines = text.trimEnd().split("\n");
  assert.equal(lines[0], vaultHeader);
  assert.ok(lines.slice(1).every((line) => /^[A-Za-z0-9+/=]{1,76}$/.test(line)));
  assert.ok(lines.slice(1, -1).every((line) => line.length === 76));
  assert.ok(!text.includes("hunter2"));
  // salt 16 + iv 12 + tag 16 + ciphertext as long as the plaintext
  assert.equal(body(text).length, 44 + Buffer.byteLength(secretYaml));
  assert.equal(decrypt(text, key, "s.yaml"), secretYaml);
  const again = encrypt(secretYaml, key);
  assert.notEqual(again, text);
  assert.notDeepEqual(body(again).subarray(0, 28), body(text).subarray(0, 28));
  assert.equal(decrypt(encrypt("", key), Buffer.from(key), "empty.yaml"), "");
});

test("vault: a wrong key is SECRET_INVALID naming the file, with a hint", async () => {
  const text = encrypt(secretYaml, generateKey());
  const error = await rejects(
    () => decrypt(text, generateKey(), "secrets.yaml"),
    "SECRET_INVALID",
    /^secrets\.yaml: cannot decrypt: wrong key, or the file was changed$/,
  );
  assert.match(error.hint ?? "", /key file/);
});

test("vault: a changed ciphertext, tag, salt or IV byte is SECRET_INVALID", async () => {
  const key = generateKey();
  const text = encrypt(secretYaml, key);
  for (const offset of [0, 16, 28, 44, 44 + 5]) {
    const data = body(text);
    data[offset] = data[offset]! ^ 0x01;
    await rejects(() => decrypt(withBody(text, data), key, "s.yaml"), "SECRET_INVALID", /cannot decrypt/);
  }
  // truncated ciphertext
  const short = withBody(text, body(text).subarray(0, -1));
  await rejects(() => decrypt(short, key, "s.yaml"), "SECRET_INVALID", /cannot decrypt/);
});

test("vault: a changed header or a malformed body is SECRET_INVALID naming the file", async () => {
  const key = generateKey();
  const text = encrypt(secretYaml, key);
  const swapped = text.replace("AES256-GCM", "AES128-GCM");
  await rejects(
    () => decrypt(swapped, key, "s.yaml"),
    "SECRET_INVALID",
    /^s\.yaml: unsupported encrypted format/,
  );
  await rejects(
    () => decrypt(text.replace(";scrypt", ";scrypt "), key, "s.yaml"),
    "SECRET_INVALID",
    /^s\.yaml: unsupported/,
  );
  await rejects(
    () => decrypt(secretYaml, key, "s.yaml"),
    "SECRET_INVALID",
    /^s\.yaml: not an encrypted file/,
  );
  await rejects(
    () => decrypt(`${vaultHeader}\nnot*base64!\n`, key, "s.yaml"),
    "SECRET_INVALID",
    /^s\.yaml: the encrypted file is malformed/,
  );
  await rejects(
    () => decrypt(`${vaultHeader}\nAAAA\n`, key, "s.yaml"),
    "SECRET_INVALID",
    /^s\.yaml: the encrypted file is malformed/,
  );
  // CRLF line endings (git autocrlf) still decrypt
  assert.equal(decrypt(text.replaceAll("\n", "\r\n"), key, "s.yaml"), secretYaml);
});

test("vault: readKey from --key-file, else GALLEY_SECRET_KEY_FILE; a final newline is not part of the key", async () => {
  const dir = await tempDir();
  const file = await keyFile(dir, "passphrase\n");
  assert.equal((await readKey({ keyFile: file, env: {} })).toString(), "passphrase");
  assert.equal((await readKey({ env: { GALLEY_SECRET_KEY_FILE: file } })).toString(), "passphrase");
  const other = path.join(dir, "other");
  await fs.writeFile(other, "other", { mode: 0o600 });
  assert.equal(
    (await readKey({ keyFile: other, env: { GALLEY_SECRET_KEY_FILE: file } })).toString(),
    "other",
  );
  const text = encrypt(secretYaml, await readKey({ keyFile: file, env: {} }));
  assert.equal(decrypt(text, "passphrase", "s.yaml"), secretYaml);
});

test("vault: readKey refuses a missing key, a group- or world-readable key file, an empty one", async () => {
  const dir = await tempDir();
  const missing = await rejects(() => readKey({ env: {} }), "SECRET_INVALID", /no secret key/);
  assert.match(missing.hint ?? "", /--key-file/);
  assert.match(missing.hint ?? "", /GALLEY_SECRET_KEY_FILE/);
  await rejects(
    () => readKey({ keyFile: path.join(dir, "nope"), env: {} }),
    "SECRET_INVALID",
    /key file .*nope.* does not exist/,
  );
  const open = await keyFile(dir, "k3y-content", 0o640);
  const error = await rejects(
    () => readKey({ keyFile: open, env: {} }),
    "SECRET_INVALID",
    /mode 0640.*too open/,
  );
  assert.match(error.hint ?? "", /chmod 600/);
  await fs.chmod(open, 0o604);
  await rejects(() => readKey({ env: { GALLEY_SECRET_KEY_FILE: open } }), "SECRET_INVALID", /too open/);
  await fs.writeFile(open, "\n");
  await fs.chmod(open, 0o600);
  await rejects(() => readKey({ keyFile: open, env: {} }), "SECRET_INVALID", /is empty/);
  await rejects(() => readKey({ keyFile: dir, env: {} }), "SECRET_INVALID", /not a regular file/);
});

test("vault: loadSecretAttributes decrypts and parses a mapping; an empty file is {}", async () => {
  const dir = await tempDir();
  const key = Buffer.from(generateKey());
  const file = path.join(dir, "secrets.yaml");
  await fs.writeFile(file, encrypt(secretYaml, key));
  assert.deepEqual(await loadSecretAttributes(file, key), { db: { password: "hunter2-sekret", port: 5432 } });
  await fs.writeFile(file, encrypt("", key));
  assert.deepEqual(await loadSecretAttributes(file, key), {});
  await rejects(() => loadSecretAttributes(path.join(dir, "none.yaml"), key), "FILE_NOT_FOUND", /none\.yaml/);
  await fs.writeFile(file, encrypt("- a list\n- not a mapping\n", key));
  await rejects(() => loadSecretAttributes(file, key), "ATTRIBUTES_INVALID", /must be a mapping/);
});

test("vault: a YAML error names the file and line, never the decrypted text", async () => {
  const dir = await tempDir();
  const key = Buffer.from(generateKey());
  const file = path.join(dir, "secrets.yaml");
  const cases = [
    "db:\n  user: admin\n  password: [topsecret-value\n",
    "db:\n  password: topsecret-value\n  password: topsecret-value\n",
    "db:\n  user: admin\n password: topsecret-value\n",
    'db: "topsecret-value\n',
    "topsecret-value: *topsecret-anchor\n",
  ];
  for (const plaintext of cases) {
    await fs.writeFile(file, encrypt(plaintext, key));
    const error = await rejects(
      () => loadSecretAttributes(file, key),
      "ATTRIBUTES_INVALID",
      /^.*secrets\.yaml: the decrypted content is not valid YAML( at line \d+)?$/,
    );
    for (const text of [error.message, error.hint ?? "", String(error.stack), String(error.cause)]) {
      assert.ok(!text.includes("topsecret"), `leaked in: ${text}`);
      assert.ok(!text.includes("admin"), `leaked in: ${text}`);
    }
  }
  await fs.writeFile(file, encrypt(cases[2]!, key));
  await rejects(() => loadSecretAttributes(file, key), "ATTRIBUTES_INVALID", /at line 3$/);
});

test("vault: secretValues lists string and number leaves of 4+ characters, lines of multi-line strings, longest first", () => {
  const values = {
    db: { password: "s3cret!", port: 5432, ssl: true, retries: 3, user: "app" },
    tokens: ["tok-aaaa", "tok-aaaa", 12345678901234567890n],
    pem: "-----BEGIN KEY-----\nMIIEabc\n  xy\n-----END KEY-----\n",
    empty: null,
  };
  assert.deepEqual(secretValues(values), [
    "-----BEGIN KEY-----\nMIIEabc\n  xy\n-----END KEY-----\n",
    "12345678901234567890",
    "-----BEGIN KEY-----",
    "-----END KEY-----",
    "tok-aaaa",
    "MIIEabc",
    "s3cret!",
    "5432",
  ]);
  assert.deepEqual(secretValues({}), []);
});
