import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { appContext } from "../../test/support/app-context.ts";
import { cookbookRepo } from "../../test/support/git-repos.ts";
import { isTempName } from "../core/temp-files.ts";
import { tempDir } from "../resources/testing.ts";
import { prepareApps } from "./apps.ts";

// An app's git mirror under concurrency: instances of one event deploying the same app at once
// (one process), and two Galley processes fetching one mirror at once.

const fetcher = fileURLToPath(new URL("../../test/support/fetch-mirror.ts", import.meta.url));

test("app mirror: eight concurrent deploys of one app in one process clone, then fetch, its mirror safely", async () => {
  const repo = await cookbookRepo();
  const kitchen = await tempDir();
  const { context, app } = appContext(kitchen, repo.url);
  for (let round = 0; round < 3; round++) {
    const head = repo.release({ name: "web", version: `1.0.${round}`, tag: false });
    const prepared = await Promise.all(Array.from({ length: 8 }, () => prepareApps(context, [app])));
    for (const [one] of prepared) {
      assert.equal(one!.revision, head);
      const listing = execFileSync("tar", ["-tzf", one!.localArchive], { encoding: "utf8" });
      assert.match(listing, /cookbook\.yaml/);
    }
    await assertCacheClean(kitchen);
  }
});

test("app mirror: two processes fetching one mirror at once both succeed and leave it intact", async () => {
  const repo = await cookbookRepo();
  const kitchen = await tempDir();
  for (let round = 0; round < 4; round++) {
    const head = repo.release({ name: "web", version: `1.1.${round}`, tag: false });
    const start = String(Date.now() + 1500);
    const results = await Promise.all([0, 1].map(() => run(["app", kitchen, repo.url, start])));
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), head);
    }
    await assertCacheClean(kitchen);
  }
});

test("cookbook mirror: three processes fetching one mirror at once both succeed and leave it intact", async () => {
  const repo = await cookbookRepo();
  const cache = await tempDir();
  for (let round = 0; round < 4; round++) {
    const head = repo.release({ name: "web", version: `2.0.${round}` });
    const start = String(Date.now() + 1500);
    const results = await Promise.all([0, 1, 2].map(() => run(["cookbook", cache, repo.url, start])));
    for (const result of results) {
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), head);
    }
    const mirrors = (await fs.readdir(path.join(cache, "git"))).filter((n) => n.endsWith(".git"));
    assert.equal(mirrors.length, 1);
    execFileSync("git", [`--git-dir=${path.join(cache, "git", mirrors[0]!)}`, "fsck", "--no-progress"]);
    const leftovers = (await fs.readdir(path.join(cache, "git"))).filter(
      (n) => n.startsWith(".clone-") || isTempName(n),
    );
    assert.deepEqual(leftovers, []);
  }
});

/** The app cache holds one intact mirror, its archives and lock files: no temp left behind. */
async function assertCacheClean(kitchen: string): Promise<void> {
  const dir = path.join(kitchen, ".galley", "cache", "apps");
  const names = await fs.readdir(dir);
  assert.deepEqual(
    names.filter((n) => n.includes(".tmp-") || isTempName(n)),
    [],
    `temp files left in ${dir}`,
  );
  const mirrors = names.filter((n) => n.endsWith(".git"));
  assert.equal(mirrors.length, 1, names.join(", "));
  execFileSync("git", [`--git-dir=${path.join(dir, mirrors[0]!)}`, "fsck", "--no-progress"]);
}

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [fetcher, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
