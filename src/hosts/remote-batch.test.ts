import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import { LocalHost } from "./local.ts";
import { ReadBatch, type RawRunner } from "./remote-batch.ts";
import { commandLine } from "./remote-command.ts";

// The batch's commands run here, through a real sh, find and tar, as they would on a remote host.
function localRunner(log: string[]): RawRunner {
  return (argv) =>
    new Promise((resolve, reject) => {
      const line = commandLine(argv, {}, { login: "root" });
      log.push(line);
      const child = spawn("sh", ["-c", line]);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (c: Buffer) => out.push(c));
      child.stderr.on("data", (c: Buffer) => err.push(c));
      child.on("error", reject);
      child.on("close", (code) =>
        resolve({ exitCode: code ?? 255, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
      );
    });
}

test("read batch: one find and one tar answer every stat and read of a turn, duplicates included", async () => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, "a"), "A");
  await fs.writeFile(path.join(dir, "nul"), Buffer.from([0, 0, 10, 0]));
  await fs.symlink("a", path.join(dir, "l"));
  const log: string[] = [];
  const batch = new ReadBatch(localRunner(log), "test");
  const local = new LocalHost();
  const names = ["a", "nul", "l", "missing", "a/x"].map((n) => path.join(dir, n));
  const [stats, again, reads] = await Promise.all([
    Promise.all(names.map((n) => batch.stat(n))),
    batch.stat(names[0]!),
    Promise.all(names.map((n) => batch.readFile(n))),
  ]);
  assert.equal(log.length, 2);
  assert.deepEqual(stats, await Promise.all(names.map((n) => local.stat(n))));
  assert.deepEqual(again, stats[0]);
  assert.deepEqual(
    reads.map((r) => r && Buffer.from(r)),
    await Promise.all(names.map((n) => local.readFile(n))),
  );
});

test("read batch: relative names and names like find's operators are not taken for expressions", async () => {
  const dir = await tempDir();
  const log: string[] = [];
  const batch = new ReadBatch(localRunner(log), "test");
  for (const name of ["!", "(", "-name"]) await fs.writeFile(path.join(dir, name), name);
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const stats = await Promise.all(["!", "(", "-name", "./-name", "nothing"].map((n) => batch.stat(n)));
    assert.deepEqual(
      stats.map((s) => s?.size),
      [1, 1, 5, 5, undefined],
    );
  } finally {
    process.chdir(cwd);
  }
});

test("read batch: a huge batch is split so that no command line passes 100 KB", async () => {
  const dir = await tempDir();
  const names = Array.from({ length: 3000 }, (_, i) => path.join(dir, `${"n".repeat(60)}-${i}`));
  await Promise.all(names.slice(0, 10).map((n) => fs.writeFile(n, n)));
  const log: string[] = [];
  const batch = new ReadBatch(localRunner(log), "test");
  const stats = await Promise.all(names.map((n) => batch.stat(n)));
  assert.ok(log.length >= 2 && log.length <= 4, `${log.length} commands`);
  for (const line of log) assert.ok(Buffer.byteLength(line) < 101_000, `${Buffer.byteLength(line)} bytes`);
  assert.equal(stats.filter(Boolean).length, 10);
});

test("read batch: a tool that fails outright rejects its whole batch with the host's name", async () => {
  const batch = new ReadBatch(
    async () => ({ exitCode: 127, stdout: Buffer.alloc(0), stderr: "sh: find: not found\n" }),
    "web1",
  );
  const error = await batch.stat("/etc/passwd").catch((e: unknown) => e);
  assert.ok(error instanceof GalleyError);
  assert.match(error.message, /find failed on web1 \(exit 127\): sh: find: not found/);
});
