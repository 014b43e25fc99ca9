import * as v from "valibot";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { file } from "./file.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

const host = new LocalHost();

test("file: creates content and mode, then changes nothing", async () => {
  const dir = await tempDir();
  const target = path.join(dir, "motd");
  const changes = await convergeTwice(host, file, { path: target, content: "hello\n", mode: "0640" });
  assert.deepEqual(
    changes.map((c) => c.property),
    ["ensure", "content", "mode"],
  );
  assert.equal(await fs.readFile(target, "utf8"), "hello\n");
  assert.equal((await fs.stat(target)).mode & 0o777, 0o640);
});

test("file: replaces drifted content with a unified diff and keeps a backup", async () => {
  const dir = await tempDir();
  const state = await tempDir();
  const target = path.join(dir, "app.conf");
  await fs.writeFile(target, "port=80\n");
  const changes = await convergeTwice(
    host,
    file,
    { path: target, content: "port=8080\n" },
    { stateDir: state },
  );
  const content = changes.find((c) => c.property === "content");
  assert.match(content?.diff ?? "", /^-port=80$/m);
  assert.match(content?.diff ?? "", /^\+port=8080$/m);
  const backups = await fs.readdir(path.join(state, "backup", dir));
  assert.equal(backups.length, 1);
  assert.equal(await fs.readFile(path.join(state, "backup", dir, backups[0]!), "utf8"), "port=80\n");
});

test("file: keeps the existing mode when mode is not managed", async () => {
  const dir = await tempDir();
  const target = path.join(dir, "script");
  await fs.writeFile(target, "old", { mode: 0o755 });
  await fs.chmod(target, 0o755);
  await convergeTwice(host, file, { path: target, content: "new" });
  assert.equal((await fs.stat(target)).mode & 0o777, 0o755);
});

test("file: copies a cookbook source, binary included", async () => {
  const cookbook = await tempDir();
  await fs.mkdir(path.join(cookbook, "files"));
  const bytes = Buffer.from([0, 1, 2, 255, 254]);
  await fs.writeFile(path.join(cookbook, "files", "blob.bin"), bytes);
  const target = path.join(await tempDir(), "blob.bin");
  await convergeTwice(host, file, { path: target, source: "blob.bin" }, { baseDir: cookbook });
  assert.deepEqual(await fs.readFile(target), bytes);
});

test("file: delete removes the file, twice is a no-op", async () => {
  const target = path.join(await tempDir(), "gone");
  await fs.writeFile(target, "x");
  const changes = await convergeTwice(host, file, { path: target }, { action: "delete" });
  assert.equal(changes.length, 1);
  await assert.rejects(fs.stat(target));
});

test("file: verify refuses bad content and leaves the file as it was", async () => {
  const target = path.join(await tempDir(), "conf");
  await fs.writeFile(target, "good\n");
  const props = await prepare(file, { path: target, content: "bad\n", verify: "grep -q good %{path}" });
  const current = await file.read(host, props);
  await assert.rejects(
    file.apply(host, props, "create", current, { stateDir: await tempDir() }),
    /verify command refused/,
  );
  assert.equal(await fs.readFile(target, "utf8"), "good\n");
  assert.deepEqual(await fs.readdir(path.dirname(target)), ["conf"]);
});

test("file: rejects unknown properties by name", () => {
  const result = v.safeParse(file.schema, { path: "/x", mdoe: "0644" });
  assert.equal(result.success, false);
  assert.match(JSON.stringify(result.issues), /mdoe/);
});

test("file: on a host without file-system abilities (as over SSH) the backup is one command and keeps the newest", async () => {
  // the local machine through the Host primitives only: exec, readFile, writeFile, stat, facts
  const plain = {
    name: host.name,
    exec: host.exec.bind(host),
    readFile: host.readFile.bind(host),
    writeFile: host.writeFile.bind(host),
    stat: host.stat.bind(host),
    facts: host.facts.bind(host),
  };
  const dir = await tempDir();
  const state = await tempDir();
  const target = path.join(dir, "it's a.conf");
  await fs.writeFile(target, "old\n");
  const backups = path.join(state, "backup", dir);
  await fs.mkdir(backups, { recursive: true });
  for (const stamp of ["20200101T000000", "20210101T000000", "20220101T000000"])
    await fs.writeFile(path.join(backups, `it's a.conf.${stamp}`), stamp);
  await fs.writeFile(path.join(backups, "it's a.conf.keep-me"), "not a backup");
  const executed: string[][] = [];
  const exec = plain.exec;
  plain.exec = (argv, options) => {
    executed.push([...argv]);
    return exec(argv, options);
  };
  await convergeTwice(plain, file, { path: target, content: "new\n", backup: 2 }, { stateDir: state });
  assert.equal(executed.length, 1, "one command for the backup");
  const left = (await fs.readdir(backups)).sort();
  assert.equal(left.length, 3);
  assert.ok(left.includes("it's a.conf.keep-me"));
  assert.ok(left.includes("it's a.conf.20220101T000000"));
  const fresh = left.find((name) => /\.\d{8}T\d{6}$/.test(name) && !name.includes("2022"))!;
  assert.equal(await fs.readFile(path.join(backups, fresh), "utf8"), "old\n");
  assert.equal((await fs.stat(path.join(backups, fresh))).mode & 0o777, 0o600);
  assert.equal(await fs.readFile(target, "utf8"), "new\n");
});
