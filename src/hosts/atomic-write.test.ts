import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../resources/testing.ts";
import { replaceDir, writeFileAtomic } from "./atomic-write.ts";
import { isTempName } from "../core/temp-files.ts";

const writer = fileURLToPath(new URL("../../test/support/atomic-writer.ts", import.meta.url));

test("writeFileAtomic: creates and replaces with the mode asked, leaving no temp file", async () => {
  const dir = await tempDir("galley-atomic-");
  const file = path.join(dir, "state.json");
  await writeFileAtomic(file, "one\n", { mode: 0o600 });
  assert.equal(await fs.readFile(file, "utf8"), "one\n");
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  await writeFileAtomic(file, new Uint8Array([116, 119, 111]), { mode: 0o640 });
  assert.equal(await fs.readFile(file, "utf8"), "two");
  assert.equal((await fs.stat(file)).mode & 0o777, 0o640);
  assert.deepEqual(await fs.readdir(dir), ["state.json"]);
});

test("writeFileAtomic exclusive: never replaces an existing file", async () => {
  const dir = await tempDir("galley-atomic-");
  const file = path.join(dir, "key");
  await writeFileAtomic(file, "first", { mode: 0o600, exclusive: true });
  await assert.rejects(writeFileAtomic(file, "second", { exclusive: true }), { code: "EEXIST" });
  assert.equal(await fs.readFile(file, "utf8"), "first");
  assert.deepEqual(await fs.readdir(dir), ["key"]);
});

test("writeFileAtomic: a missing folder rejects and leaves nothing", async () => {
  const dir = await tempDir("galley-atomic-");
  await assert.rejects(writeFileAtomic(path.join(dir, "nope", "f"), "x"), { code: "ENOENT" });
  assert.deepEqual(await fs.readdir(dir), []);
});

test("writeFileAtomic: kill -9 at any moment leaves the old or the new file whole, and only a recognisable temp", async () => {
  const dir = await tempDir("galley-atomic-");
  const file = path.join(dir, "big");
  const size = 4 << 20;
  await fs.writeFile(file, Buffer.alloc(size, 65));
  const seen = new Set<number>();
  let temps = 0;
  for (let round = 0; round < 8; round++) {
    const child = spawn(process.execPath, [writer, file, String(size)], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    // somewhere inside a write: each takes a few milliseconds
    await new Promise((resolve) => setTimeout(resolve, 40 + Math.floor(Math.random() * 120)));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
    const data = await fs.readFile(file);
    assert.equal(data.length, size, "a whole file");
    assert.ok(
      data.every((byte) => byte === data[0]),
      "one version, not a mix",
    );
    seen.add(data[0]!);
    for (const name of await fs.readdir(dir)) {
      if (name === "big") continue;
      assert.ok(isTempName(name), `${name} is a temp name a sweep removes`);
      temps += 1;
      await fs.rm(path.join(dir, name));
    }
  }
  assert.ok(seen.size > 1, "the writer did replace the file");
  assert.ok(temps > 0, "some kills landed inside a write");
});

test("replaceDir: the new folder takes the place of the old one, which is gone", async () => {
  const dir = await tempDir("galley-atomic-");
  const target = path.join(dir, "vendor");
  const fresh = path.join(dir, "fresh");
  await fs.mkdir(target);
  await fs.writeFile(path.join(target, "old"), "old");
  await fs.mkdir(fresh);
  await fs.writeFile(path.join(fresh, "new"), "new");
  await replaceDir(fresh, target);
  assert.deepEqual(await fs.readdir(target), ["new"]);
  assert.deepEqual((await fs.readdir(dir)).sort(), ["vendor"]);
  // into a place that did not exist
  await fs.mkdir(fresh);
  await replaceDir(fresh, path.join(dir, "other"));
  assert.deepEqual((await fs.readdir(dir)).sort(), ["other", "vendor"]);
});
