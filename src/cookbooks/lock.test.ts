import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { cookbookRepo, sh, writeCookbookSync, writeSources } from "../../test/support/git-repos.ts";
import { tempDir } from "../resources/testing.ts";
import { cookbookDigest } from "./digest.ts";
import { gitSession } from "./git.ts";
import { kitchenCookbooks } from "./kitchen.ts";
import { formatLock, type Lockfile, lockedCookbookDir, readLock, writeLock } from "./lock.ts";
import { originFileOf } from "./origin.ts";
import { resolveKitchen } from "./resolve.ts";
import { loadSources } from "./sources.ts";

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; hint: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; hint: string };
  }
  assert.fail("expected an error");
}

/** A kitchen with a path cookbook (web) depending on a git cookbook (base, two tags), installed and locked. */
async function lockedKitchen() {
  const repo = await cookbookRepo();
  repo.release({ name: "base", version: "1.0.0" });
  const commit = repo.release({ name: "base", version: "1.1.0", files: { "files/motd": "hello\n" } });
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "site", "web"), {
    name: "web",
    version: "0.1.0",
    depends: { base: "^1" },
  });
  await writeSources(
    root,
    `cookbooks:\n  web: { path: ./site/web }\n  base: { git: ${repo.url}, version: "^1" }\n`,
  );
  const cache = await tempDir("galley-t-cache-");
  process.env.GALLEY_CACHE_DIR = cache;
  const lock = await resolveKitchen({ sources: (await loadSources(root))!, session: gitSession(cache) });
  await writeLock(path.join(root, "cookbooks.lock"), lock);
  return { root, cache, lock, commit, repo };
}

test("lock: stable JSON (fixed key order, sorted names and depends, trailing newline), pinning commits and digests", async () => {
  const { root, cache, lock, commit } = await lockedKitchen();
  const text = await fs.readFile(path.join(root, "cookbooks.lock"), "utf8");
  assert.ok(text.endsWith("}\n"));
  assert.equal(text, formatLock(lock));
  const parsed = JSON.parse(text) as Lockfile;
  assert.deepEqual(Object.keys(parsed), ["lockfileVersion", "sourcesSha256", "cookbooks"]);
  assert.equal(parsed.lockfileVersion, 1);
  assert.equal(parsed.sourcesSha256, (await loadSources(root))!.sha256);
  assert.deepEqual(Object.keys(parsed.cookbooks), ["base", "web"]);
  const base = parsed.cookbooks.base!;
  assert.deepEqual(Object.keys(base), ["version", "source", "commit", "sha256", "depends"]);
  assert.equal(base.version, "1.1.0");
  assert.equal(base.commit, commit);
  const cached = lockedCookbookDir(root, cache, "base", base);
  assert.equal(path.basename(cached), `base-1.1.0-${base.sha256.slice(0, 12)}`);
  assert.equal(await cookbookDigest(cached), base.sha256);
  assert.equal(await fs.readFile(path.join(cached, "files", "motd"), "utf8"), "hello\n");
  const web = parsed.cookbooks.web!;
  assert.deepEqual(web, {
    version: "0.1.0",
    source: { path: "./site/web" },
    sha256: await cookbookDigest(path.join(root, "site", "web")),
    depends: { base: "^1" },
  });
  // the same inputs give the same bytes; an unchanged lock is not rewritten
  assert.equal(await writeLock(path.join(root, "cookbooks.lock"), lock), false);
  assert.deepEqual(await readLock(path.join(root, "cookbooks.lock")), lock);
});

test("lock: a hand-broken lock is LOCK_INVALID naming the file, line and field", async () => {
  const { root } = await lockedKitchen();
  const file = path.join(root, "cookbooks.lock");
  const text = await fs.readFile(file, "utf8");
  await fs.writeFile(file, text.replace(/"sha256": "[0-9a-f]{64}"/, '"sha256": "abc"'));
  const error = await failure(readLock(file));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(error.message, /cookbooks\.lock:\d+: cookbooks\.base\.sha256: a sha256 in hex/);
  assert.match(error.hint, /galley cookbooks install/);
  await fs.writeFile(file, text.replace('"lockfileVersion": 1', '"lockfileVersion": 7'));
  assert.match(
    (await failure(readLock(file))).message,
    /cookbooks\.lock:2: lockfileVersion: 1 \(the only lock format/,
  );
});

test("kitchenCookbooks: the locked versions, from the path folder and the cache", async () => {
  const { root, cache, lock } = await lockedKitchen();
  const result = await kitchenCookbooks({ root });
  assert.deepEqual(result.lock, lock);
  assert.deepEqual(
    [...result.cookbooks].map(([name, c]) => [name, c.version, c.dir]),
    [
      ["base", "1.1.0", lockedCookbookDir(root, cache, "base", lock.cookbooks.base!)],
      ["web", "0.1.0", path.join(root, "site", "web")],
    ],
  );
});

test("kitchenCookbooks: no lock, or a cookbooks.yaml changed since locking, is LOCK_INVALID", async () => {
  const { root } = await lockedKitchen();
  const yaml = await fs.readFile(path.join(root, "cookbooks.yaml"), "utf8");
  await fs.appendFile(path.join(root, "cookbooks.yaml"), "# a comment changes nothing\n");
  await kitchenCookbooks({ root });
  await fs.writeFile(path.join(root, "cookbooks.yaml"), yaml.replace('version: "^1"', 'version: "~1.1"'));
  let error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(error.message, /cookbooks\.lock is stale: .*cookbooks\.yaml changed since it was locked/);
  assert.match(error.hint, /galley cookbooks install/);
  await fs.rm(path.join(root, "cookbooks.lock"));
  error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(error.message, /no cookbooks\.lock beside .*cookbooks\.yaml/);
  assert.equal(error.hint, "run galley cookbooks install");
});

test("kitchenCookbooks: a changed path cookbook makes the lock stale; install re-locks it", async () => {
  const { root } = await lockedKitchen();
  await fs.writeFile(path.join(root, "site", "web", "recipes", "default.ts"), "// changed\n");
  const error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(
    error.message,
    /cookbooks\.lock is stale: cookbook web \(path \.\/site\/web\) changed since it was locked/,
  );
  assert.match(error.hint, /galley cookbooks install re-locks it/);
});

test("kitchenCookbooks: a modified or missing cache copy is refused; install fetches it again", async () => {
  const { root, cache, lock } = await lockedKitchen();
  const cached = lockedCookbookDir(root, cache, "base", lock.cookbooks.base!);
  await fs.writeFile(path.join(cached, "files", "motd"), "tampered\n");
  let error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(error.message, /the cached copy of base 1\.1\.0 in .* was modified .*; refusing to use it/);
  assert.equal(error.hint, "galley cookbooks install fetches it again");

  const again = await resolveKitchen({
    sources: (await loadSources(root))!,
    session: gitSession(cache),
    lock,
  });
  assert.deepEqual(again, lock);
  assert.equal(await fs.readFile(path.join(cached, "files", "motd"), "utf8"), "hello\n");
  await kitchenCookbooks({ root });

  await fs.rm(cached, { recursive: true });
  error = await failure(kitchenCookbooks({ root }));
  assert.match(error.message, /cookbook base 1\.1\.0 is not in the cache/);
  assert.equal(error.hint, "run galley cookbooks install to fetch it");
});

test("kitchenCookbooks: without cookbooks.yaml, the plain ./cookbooks folder, unlocked", async () => {
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "cookbooks", "site"), { name: "site", version: "1.0.0" });
  const result = await kitchenCookbooks({ root });
  assert.equal(result.lock, undefined);
  assert.deepEqual([...result.cookbooks.keys()], ["site"]);
  writeCookbookSync(path.join(root, "elsewhere", "other"), { name: "other", version: "1.0.0" });
  const other = await kitchenCookbooks({ root, cookbooksDir: path.join(root, "elsewhere") });
  assert.deepEqual([...other.cookbooks.keys()], ["other"]);
});

test("kitchenCookbooks: a lock whose commit was edited is LOCK_INVALID, and install refuses it too", async () => {
  const { root, cache, lock, commit, repo } = await lockedKitchen();
  const sources = (await loadSources(root))!;
  const older = sh(repo.url, "rev-parse", "v1.0.0^{commit}");
  const lockFile = path.join(root, "cookbooks.lock");
  const edited = structuredClone(lock);
  edited.cookbooks.base!.commit = older;
  await writeLock(lockFile, edited);
  let error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(
    error.message,
    new RegExp(
      `the cached copy of base 1\\.1\\.0 in .* was exported from commit ${commit.slice(0, 12)}, not from the locked commit ${older}`,
    ),
  );
  assert.match(error.hint, /galley cookbooks update base re-locks it/);
  // install exports the commit the lock names, and its content is not what the lock pins
  error = await failure(resolveKitchen({ sources, session: gitSession(cache), lock: edited }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(
    error.message,
    new RegExp(`base 1\\.1\\.0 at commit ${older} has sha256 \\w+, but the lock says`),
  );
  // a commit the repository does not have
  edited.cookbooks.base!.commit = "f".repeat(40);
  await writeLock(lockFile, edited);
  error = await failure(kitchenCookbooks({ root }));
  assert.match(error.message, /not from the locked commit f{40}/);

  // a cache copy without a record (an older galley's) is refused until install records its commit
  await writeLock(lockFile, lock);
  const cached = lockedCookbookDir(root, cache, "base", lock.cookbooks.base!);
  await fs.rm(originFileOf(cached));
  error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(error.message, /does not record the commit it came from .*; the lock pins commit/);
  assert.match(error.hint, /galley cookbooks install exports the locked commit again/);
  assert.deepEqual(await resolveKitchen({ sources, session: gitSession(cache), lock }), lock);
  await kitchenCookbooks({ root });
});

test("kitchenCookbooks: a lock pinning another version of unchanged content says what differs, not one digest twice", async () => {
  const { root, lock } = await lockedKitchen();
  const edited = structuredClone(lock);
  edited.cookbooks.web!.version = "0.1.1";
  await writeLock(path.join(root, "cookbooks.lock"), edited);
  const error = await failure(kitchenCookbooks({ root }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(
    error.message,
    /cookbook web \(path \.\/site\/web\) does not match it \(its cookbook\.yaml says version 0\.1\.0, the lock pins 0\.1\.1; the content is unchanged\)/,
  );
  assert.doesNotMatch(error.message, /sha256 (\w+)….*now \1/);
});
