import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { cookbookRepo } from "../../test/support/git-repos.ts";
import { isTempName } from "../core/temp-files.ts";
import { tempDir } from "../resources/testing.ts";
import { git, mirrorPath, syncMirror } from "./mirror.ts";

const fail = (command: string, reason: string) => new Error(`${command}: ${reason}`);

test("syncMirror: concurrent calls in one process clone once, then fetch, and see the newest commit", async () => {
  const repo = await cookbookRepo();
  const cache = await tempDir("galley-mirror-");
  const dir = mirrorPath(path.join(cache, "git"), repo.url);
  assert.match(path.basename(dir), /^[0-9a-f]{16}\.git$/);
  for (let round = 0; round < 3; round++) {
    const head = repo.release({ name: "web", version: `1.0.${round}` });
    const dirs = await Promise.all(Array.from({ length: 6 }, () => syncMirror(dir, repo.url, fail)));
    assert.deepEqual(new Set(dirs), new Set([dir]));
    const result = await git(["rev-parse", "refs/heads/main"], dir);
    assert.equal(result.stdout.trim(), head);
    execFileSync("git", [`--git-dir=${dir}`, "fsck", "--no-progress"]);
    const names = await fs.readdir(path.dirname(dir));
    assert.deepEqual(names.filter(isTempName), [], "no temp clone left");
    assert.deepEqual(names.sort(), [path.basename(dir), `${path.basename(dir)}.lock`]);
  }
});

test("syncMirror: a moved tag is fetched; a deleted branch is pruned", async () => {
  const repo = await cookbookRepo();
  const dir = mirrorPath(await tempDir("galley-mirror-"), repo.url);
  repo.release({ name: "web", version: "1.0.0", tag: "stable" });
  repo.release({ name: "web", version: "1.0.1", branch: "topic", tag: false });
  await syncMirror(dir, repo.url, fail);
  assert.ok((await git(["rev-parse", "--verify", "refs/heads/topic"], dir)).ok);
  const moved = repo.release({ name: "web", version: "1.0.2", branch: "main", tag: "stable" });
  execFileSync("git", [`--git-dir=${repo.url}`, "branch", "-D", "topic"]);
  await syncMirror(dir, repo.url, fail);
  assert.equal((await git(["rev-parse", "refs/tags/stable^{commit}"], dir)).stdout.trim(), moved);
  assert.equal((await git(["rev-parse", "--verify", "refs/heads/topic"], dir)).ok, false);
});

test("syncMirror: an unreachable repository is the caller's error, and leaves no mirror or temp behind", async () => {
  const cache = await tempDir("galley-mirror-");
  const url = path.join(cache, "no-such-repo.git");
  const dir = mirrorPath(path.join(cache, "git"), url, "app-", 12);
  assert.match(path.basename(dir), /^app-[0-9a-f]{12}\.git$/);
  await assert.rejects(
    syncMirror(dir, url, fail),
    /^Error: clone: .*(does not exist|not appear to be a git repository)/,
  );
  const names = await fs.readdir(path.dirname(dir));
  assert.deepEqual(
    names.filter((n) => n !== `${path.basename(dir)}.lock`),
    [],
  );
});
