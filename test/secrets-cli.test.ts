import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { secretsCommand } from "../src/cli/secrets.ts";
import { GalleyError } from "../src/core/errors.ts";
import { tempDir } from "../src/resources/testing.ts";
import { decrypt, isEncrypted, readKey } from "../src/secrets/vault.ts";

const plain = "db:\n  password: old-password\n  port: 5432\n";

type Values = Parameters<typeof secretsCommand.run>[0];

/** Runs the command object with stdout captured; a thrown error is returned, not raised. */
async function run(values: Partial<Values>, positionals: string[]) {
  const chunks: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk));
    return true;
  }) as typeof process.stdout.write;
  let code: number | undefined;
  let error: GalleyError | undefined;
  try {
    code = await secretsCommand.run({ json: false, ...values }, positionals);
  } catch (caught) {
    if (!(caught instanceof GalleyError)) throw caught;
    error = caught;
  } finally {
    process.stdout.write = write;
  }
  return { code, error, stdout: chunks.join("") };
}

/** Runs `fn` with environment variables set (undefined: unset), restoring them after. */
async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

/** A kitchen folder with a fresh key (from keygen) and a plain secrets.yaml. */
async function setup() {
  const dir = await tempDir();
  const keyFile = path.join(dir, "secret.key");
  const keygen = await run({ "key-file": keyFile }, ["keygen"]);
  assert.equal(keygen.code, 0, keygen.error?.message);
  const file = path.join(dir, "secrets.yaml");
  await fs.writeFile(file, plain, { mode: 0o644 });
  await fs.chmod(file, 0o644);
  return { dir, keyFile, file, key: await readKey({ keyFile, env: {} }) };
}

/** An editor script: records the file it was given, its folder's and its own mode, then runs `action`. */
async function editorScript(dir: string, action: string): Promise<{ editor: string; log: string }> {
  const log = path.join(dir, "editor.log");
  const editor = path.join(dir, "editor.sh");
  const script = `#!/bin/sh\nprintf '%s\\n' "$1" > ${log}\nstat -c %a "$(dirname "$1")" >> ${log}\nstat -c %a "$1" >> ${log}\n${action}\n`;
  await fs.writeFile(editor, script, { mode: 0o755 });
  return { editor, log };
}

async function editorLog(log: string) {
  const [file = "", dirMode, fileMode] = (await fs.readFile(log, "utf8")).trimEnd().split("\n");
  return { file, dirMode, fileMode };
}

test("secrets keygen: a random key, mode 0600, never overwritten", async () => {
  const dir = await tempDir();
  const keyFile = path.join(dir, "k");
  const result = await run({ "key-file": keyFile, json: true }, ["keygen"]);
  assert.equal(result.code, 0);
  assert.deepEqual(JSON.parse(result.stdout), { status: "ok", keyFile });
  const key = await fs.readFile(keyFile, "utf8");
  assert.match(key, /^[A-Za-z0-9+/]{43}=\n$/);
  assert.ok(!result.stdout.includes(key.trim()), "the key is never printed");
  assert.equal((await fs.stat(keyFile)).mode & 0o777, 0o600);
  const again = await run({ "key-file": keyFile }, ["keygen"]);
  assert.equal(again.error?.code, "USAGE");
  assert.match(again.error?.message ?? "", /already exists/);
  assert.equal(await fs.readFile(keyFile, "utf8"), key);
  assert.deepEqual(await fs.readdir(dir), ["k"]);
  const other = await run({ "key-file": path.join(dir, "k2") }, ["keygen"]);
  assert.notEqual(await fs.readFile(path.join(dir, "k2"), "utf8"), key);
  assert.match(other.stdout, /wrote a new secret key to .*k2 \(mode 0600\)/);
});

test("secrets encrypt/decrypt: in place by rename, modes, refusing double encryption and decryption", async () => {
  const { dir, keyFile, file, key } = await setup();
  const before = await fs.stat(file);
  const enc = await run({ "key-file": keyFile }, ["encrypt", file]);
  assert.equal(enc.code, 0, enc.error?.message);
  assert.equal(enc.stdout, `encrypted ${file}\n`);
  const encrypted = await fs.readFile(file, "utf8");
  assert.ok(isEncrypted(encrypted));
  assert.equal(decrypt(encrypted, key, file), plain);
  const after = await fs.stat(file);
  assert.notEqual(after.ino, before.ino, "replaced by a rename, not rewritten in place");
  assert.equal(after.mode & 0o777, 0o644, "an encrypted file keeps its mode");
  assert.deepEqual((await fs.readdir(dir)).sort(), ["secret.key", "secrets.yaml"], "no temp file left");

  const twice = await run({ "key-file": keyFile }, ["encrypt", file]);
  assert.equal(twice.error?.code, "SECRET_INVALID");
  assert.match(twice.error?.message ?? "", /already encrypted/);
  assert.match(twice.error?.hint ?? "", /galley secrets edit/);
  assert.equal(await fs.readFile(file, "utf8"), encrypted);

  const dec = await run({ "key-file": keyFile, json: true }, ["decrypt", file]);
  assert.equal(dec.code, 0, dec.error?.message);
  assert.deepEqual(JSON.parse(dec.stdout), { status: "ok", file, out: file });
  assert.equal(await fs.readFile(file, "utf8"), plain);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600, "clear text is private");
  const again = await run({ "key-file": keyFile }, ["decrypt", file]);
  assert.equal(again.error?.code, "SECRET_INVALID");
  assert.match(again.error?.message ?? "", /not an encrypted file/);
  assert.equal(await fs.readFile(file, "utf8"), plain);
  assert.deepEqual((await fs.readdir(dir)).sort(), ["secret.key", "secrets.yaml"]);
});

test("secrets decrypt --out and view print or write the clear text; other commands never print it", async () => {
  const { dir, keyFile, file } = await setup();
  const enc = await run({ "key-file": keyFile }, ["encrypt", file]);
  assert.ok(!enc.stdout.includes("old-password"));
  const encrypted = await fs.readFile(file, "utf8");
  assert.equal((await run({ "key-file": keyFile, out: "-" }, ["decrypt", file])).stdout, plain);
  const out = path.join(dir, "clear.yaml");
  const written = await run({ "key-file": keyFile, out }, ["decrypt", file]);
  assert.ok(!written.stdout.includes("old-password"));
  assert.equal(await fs.readFile(out, "utf8"), plain);
  assert.equal(await fs.readFile(file, "utf8"), encrypted, "--out leaves the encrypted file alone");
  assert.equal((await run({ "key-file": keyFile }, ["view", file])).stdout, plain);
  assert.deepEqual(JSON.parse((await run({ "key-file": keyFile, json: true }, ["view", file])).stdout), {
    status: "ok",
    file,
    content: plain,
  });
});

test("secrets: a wrong key is SECRET_INVALID and changes nothing", async () => {
  const { dir, keyFile, file } = await setup();
  await run({ "key-file": keyFile }, ["encrypt", file]);
  const encrypted = await fs.readFile(file, "utf8");
  const wrongKey = path.join(dir, "wrong.key");
  await run({ "key-file": wrongKey }, ["keygen"]);
  const { editor, log } = await editorScript(dir, 'echo "x: 1" > "$1"');
  for (const command of ["decrypt", "view", "edit"]) {
    const result = await withEnv({ EDITOR: editor, VISUAL: undefined }, () =>
      run({ "key-file": wrongKey }, [command, file]),
    );
    assert.equal(result.error?.code, "SECRET_INVALID", command);
    assert.equal(result.error?.message, `${file}: cannot decrypt: wrong key, or the file was changed`);
    assert.equal(result.stdout, "");
  }
  assert.ok(!existsSync(log), "the editor never ran");
  assert.equal(await fs.readFile(file, "utf8"), encrypted);
});

test("secrets: the key comes from GALLEY_SECRET_KEY_FILE; a readable key file or no key is refused", async () => {
  const { keyFile, file } = await setup();
  await withEnv({ GALLEY_SECRET_KEY_FILE: keyFile }, async () => {
    assert.equal((await run({}, ["encrypt", file])).code, 0);
    assert.equal((await run({}, ["view", file])).stdout, plain);
  });
  const encrypted = await fs.readFile(file, "utf8");
  const none = await withEnv({ GALLEY_SECRET_KEY_FILE: undefined }, () => run({}, ["decrypt", file]));
  assert.equal(none.error?.code, "SECRET_INVALID");
  assert.match(none.error?.hint ?? "", /--key-file FILE or set GALLEY_SECRET_KEY_FILE/);
  await fs.chmod(keyFile, 0o644);
  const open = await run({ "key-file": keyFile }, ["decrypt", file]);
  assert.equal(open.error?.code, "SECRET_INVALID");
  assert.match(open.error?.hint ?? "", /chmod 600/);
  assert.equal(await fs.readFile(file, "utf8"), encrypted);
});

test("secrets encrypt refuses a file that is not a YAML mapping, and a missing file", async () => {
  const { dir, keyFile, file } = await setup();
  await fs.writeFile(file, "db:\n  password: old-password\n password: x\n");
  const bad = await run({ "key-file": keyFile }, ["encrypt", file]);
  assert.equal(bad.error?.code, "ATTRIBUTES_INVALID");
  assert.equal(bad.error?.message, `${file}: the content is not valid YAML at line 3`);
  // the file is not encrypted yet: the hint must not send the user to `secrets edit`, which refuses it
  assert.equal(
    bad.error?.hint,
    `fix ${file} with any editor (it is not encrypted yet), then run: galley secrets encrypt ${file}`,
  );
  assert.match(await fs.readFile(file, "utf8"), /^db:/);
  await fs.writeFile(file, "- a list\n");
  const list = await run({ "key-file": keyFile }, ["encrypt", file]);
  assert.equal(list.error?.code, "ATTRIBUTES_INVALID");
  assert.doesNotMatch(list.error?.hint ?? "", /secrets edit/);
  // a file that is not UTF-8 would be encrypted with its characters replaced: refused, unchanged
  const latin1 = Buffer.from("db:\n  password: caf\xe9\n", "latin1");
  await fs.writeFile(file, latin1);
  const notUtf8 = await run({ "key-file": keyFile }, ["encrypt", file]);
  assert.equal(notUtf8.error?.code, "ATTRIBUTES_INVALID");
  assert.equal(notUtf8.error?.message, `${file}:2: not UTF-8 text`);
  assert.deepEqual(await fs.readFile(file), latin1);
  const missing = await run({ "key-file": keyFile }, ["encrypt", path.join(dir, "nope.yaml")]);
  assert.equal(missing.error?.code, "FILE_NOT_FOUND");
  assert.match(missing.error?.message ?? "", /nope\.yaml does not exist/);
});

test("secrets edit: the editor changes a private copy, which is re-encrypted; the temp folder is removed", async () => {
  const { dir, keyFile, file, key } = await setup();
  await run({ "key-file": keyFile }, ["encrypt", file]);
  const { editor, log } = await editorScript(dir, 'sed -i s/old-password/new-password/ "$1"');
  const result = await withEnv({ EDITOR: editor, VISUAL: undefined }, () =>
    run({ "key-file": keyFile }, ["edit", file]),
  );
  assert.equal(result.code, 0, result.error?.message);
  assert.equal(result.stdout, `encrypted ${file} (changed)\n`);
  const text = await fs.readFile(file, "utf8");
  assert.equal(decrypt(text, key, file), plain.replace("old-password", "new-password"));
  const seen = await editorLog(log);
  assert.equal(
    path.basename(seen.file),
    "secrets.yaml",
    "the copy keeps the name (and the editor its syntax)",
  );
  if (existsSync("/dev/shm")) assert.ok(seen.file.startsWith("/dev/shm/"), seen.file);
  assert.equal(seen.dirMode, "700");
  assert.equal(seen.fileMode, "600");
  assert.ok(!existsSync(path.dirname(seen.file)), "the temp folder is gone");
});

test("secrets edit: $VISUAL wins over $EDITOR, a shell command line works; no change writes nothing", async () => {
  const { keyFile, file, key } = await setup();
  await run({ "key-file": keyFile }, ["encrypt", file]);
  const edited = await withEnv({ VISUAL: `sh -c 'sed -i s/5432/6543/ "$0"'`, EDITOR: "false" }, () =>
    run({ "key-file": keyFile }, ["edit", file]),
  );
  assert.equal(edited.code, 0, edited.error?.message);
  assert.match(decrypt(await fs.readFile(file, "utf8"), key, file), /port: 6543/);
  const before = await fs.readFile(file, "utf8");
  const same = await withEnv({ VISUAL: undefined, EDITOR: "true" }, () =>
    run({ "key-file": keyFile, json: true }, ["edit", file]),
  );
  assert.deepEqual(JSON.parse(same.stdout), { status: "ok", file, changed: false });
  assert.equal(await fs.readFile(file, "utf8"), before, "not re-encrypted when unchanged");
});

test("secrets edit: invalid YAML changes nothing, keeps the edit and says where, without the secret", async () => {
  const { dir, keyFile, file, key } = await setup();
  await run({ "key-file": keyFile }, ["encrypt", file]);
  const encrypted = await fs.readFile(file, "utf8");
  const broken = "db:\n  password: new-password\n user: top-secret-user\n";
  const { editor, log } = await editorScript(dir, `printf '${broken.replaceAll("\n", "\\n")}' > "$1"`);
  const result = await withEnv({ EDITOR: editor, VISUAL: undefined }, () =>
    run({ "key-file": keyFile }, ["edit", file]),
  );
  assert.equal(result.error?.code, "ATTRIBUTES_INVALID");
  assert.equal(
    result.error?.message,
    `${file}: the edited content is not valid YAML at line 3: ${file} was not changed`,
  );
  const seen = await editorLog(log);
  assert.match(result.error?.hint ?? "", new RegExp(`your edit is kept in ${seen.file}`));
  for (const text of [result.error?.message ?? "", result.error?.hint ?? "", result.stdout]) {
    assert.ok(!/password|secret-user|old-|new-/.test(text.replaceAll(file, "").replaceAll(seen.file, "")));
  }
  assert.equal(await fs.readFile(file, "utf8"), encrypted, "the encrypted file is untouched");
  assert.equal(decrypt(encrypted, key, file), plain);
  assert.equal(await fs.readFile(seen.file, "utf8"), broken, "nothing typed is lost");
  await fs.rm(path.dirname(seen.file), { recursive: true });
});

test("secrets edit: a new file starts empty; a failing editor changes nothing (and keeps an edit)", async () => {
  const { dir, keyFile, key } = await setup();
  const file = path.join(dir, "new.yaml");
  const { editor, log } = await editorScript(dir, `[ -s "$1" ] && exit 9; echo "token: abcd-efgh" > "$1"`);
  const created = await withEnv({ EDITOR: editor, VISUAL: undefined }, () =>
    run({ "key-file": keyFile }, ["edit", file]),
  );
  assert.equal(created.code, 0, created.error?.message);
  assert.equal(decrypt(await fs.readFile(file, "utf8"), key, file), "token: abcd-efgh\n");
  const failing = await withEnv({ EDITOR: editor, VISUAL: undefined }, () =>
    run({ "key-file": keyFile }, ["edit", file]),
  );
  assert.equal(failing.error?.code, "EXEC_FAILED");
  assert.match(failing.error?.message ?? "", /exited with status 9: .* was not changed/);
  assert.ok(!existsSync(path.dirname((await editorLog(log)).file)), "the temp folder is gone");
  const keeper = await editorScript(dir, 'echo "token: changed" > "$1"; exit 1');
  const kept = await withEnv({ EDITOR: keeper.editor, VISUAL: undefined }, () =>
    run({ "key-file": keyFile }, ["edit", file]),
  );
  assert.equal(kept.error?.code, "EXEC_FAILED");
  const draft = (await editorLog(keeper.log)).file;
  assert.match(kept.error?.hint ?? "", new RegExp(`your edit is kept in ${draft}`));
  assert.equal(await fs.readFile(draft, "utf8"), "token: changed\n");
  await fs.rm(path.dirname(draft), { recursive: true });
  assert.equal(decrypt(await fs.readFile(file, "utf8"), key, file), "token: abcd-efgh\n");
  const missingDir = await run({ "key-file": keyFile }, ["edit", path.join(dir, "no", "s.yaml")]);
  assert.equal(missingDir.error?.code, "FILE_NOT_FOUND");
});

test("secrets: usage errors name what is wrong", async () => {
  const cases: [Partial<Values>, string[], RegExp][] = [
    [{}, [], /which subcommand/],
    [{}, ["rotate", "x"], /unknown subcommand "rotate"/],
    [{}, ["encrypt"], /expected one FILE/],
    [{}, ["view", "a", "b"], /expected one FILE/],
    [{ out: "-" }, ["view", "a"], /--out is an option of decrypt only/],
  ];
  for (const [values, positionals, message] of cases) {
    const result = await withEnv({ GALLEY_SECRET_KEY_FILE: undefined }, () => run(values, positionals));
    assert.equal(result.error?.code, "USAGE", positionals.join(" "));
    assert.match(result.error?.message ?? "", message);
  }
  const keygen = await withEnv({ GALLEY_SECRET_KEY_FILE: undefined }, () => run({}, ["keygen"]));
  assert.match(keygen.error?.hint ?? "", /--key-file FILE/);
});
