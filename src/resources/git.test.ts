import * as v from "valibot";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { before, test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { git } from "./git.ts";
import { gitEnv, sh } from "../../test/support/git-repos.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

const host = new LocalHost();

const context = { stateDir: "/nonexistent" };
/** A bare repository with a work tree that pushes to it: commits on main, a branch, two tags. */
interface Fixture {
  bare: string;
  work: string;
  commits: { c1: string; c2: string; feature: string };
  commit(message: string, branch?: string): string;
}

async function fixture(): Promise<Fixture> {
  const root = await tempDir("galley-t-git-");
  const bare = path.join(root, "upstream.git");
  const work = path.join(root, "work");
  sh(root, "init", "--quiet", "--bare", "--initial-branch=main", bare);
  sh(root, "clone", "--quiet", bare, work);
  const commit = (message: string, branch = "main") => {
    sh(work, "checkout", "--quiet", "-B", branch);
    execFileSync("sh", ["-c", `echo "${message}" > README`], { cwd: work });
    sh(work, "add", "README");
    sh(work, "commit", "--quiet", "-m", message);
    sh(work, "push", "--quiet", "origin", branch);
    return sh(work, "rev-parse", "HEAD");
  };
  const c1 = commit("one");
  sh(work, "tag", "v1"); // lightweight
  const c2 = commit("two");
  sh(work, "tag", "-a", "v2", "-m", "release two"); // annotated: ls-remote peels it with ^{}
  sh(work, "push", "--quiet", "origin", "v1", "v2");
  const feature = commit("feature work", "feature");
  sh(work, "checkout", "--quiet", "main");
  return { bare, work, commits: { c1, c2, feature }, commit };
}

let repo: Fixture;
before(async () => {
  repo = await fixture();
});

async function destination(): Promise<string> {
  return path.join(await tempDir("galley-t-git-"), "checkout");
}

const headOf = (dir: string) => sh(dir, "rev-parse", "HEAD");
const branchOf = (dir: string) =>
  execFileSync("git", ["-C", dir, "branch", "--show-current"], { encoding: "utf8" }).trim();

test("git: clones a branch as a local branch tracking the remote, then changes nothing", async () => {
  const dest = await destination();
  const changes = await convergeTwice(host, git, {
    destination: dest,
    repository: repo.bare,
    revision: "main",
  });
  assert.deepEqual(changes, [
    { property: "ensure", from: "absent", to: "clone" },
    { property: "revision", to: repo.commits.c2.slice(0, 7) },
  ]);
  assert.equal(headOf(dest), repo.commits.c2);
  assert.equal(branchOf(dest), "main");
  assert.equal(sh(dest, "rev-parse", "--abbrev-ref", "main@{upstream}"), "origin/main");
  assert.equal(await fs.readFile(path.join(dest, "README"), "utf8"), "two\n");
});

test("git: clones at annotated and lightweight tags (detached)", async () => {
  for (const [tag, sha] of [
    ["v2", repo.commits.c2],
    ["v1", repo.commits.c1],
  ] as const) {
    const dest = await destination();
    await convergeTwice(host, git, { destination: dest, repository: repo.bare, revision: tag });
    assert.equal(headOf(dest), sha, tag);
    assert.equal(branchOf(dest), "", `${tag} is checked out detached`);
  }
});

test("git: clones at a full and at a short commit", async () => {
  for (const revision of [repo.commits.c1, repo.commits.c1.slice(0, 10)]) {
    const dest = await destination();
    await convergeTwice(host, git, { destination: dest, repository: repo.bare, revision });
    assert.equal(headOf(dest), repo.commits.c1, revision);
  }
});

test("git: HEAD follows the remote's default branch", async () => {
  const dest = await destination();
  await convergeTwice(host, git, { destination: dest, repository: repo.bare });
  assert.equal(headOf(dest), sh(repo.bare, "rev-parse", "main"));
});

test("git: a commit pushed to the branch moves the next sync, discarding local changes", async () => {
  const r = await fixture();
  const dest = await destination();
  const props = { destination: dest, repository: r.bare, revision: "main" };
  await convergeTwice(host, git, props);
  await fs.writeFile(path.join(dest, "README"), "edited by hand\n");
  await fs.writeFile(path.join(dest, "untracked.txt"), "mine\n");
  const c3 = r.commit("three");
  const changes = await convergeTwice(host, git, props);
  assert.deepEqual(changes, [{ property: "revision", from: r.commits.c2.slice(0, 7), to: c3.slice(0, 7) }]);
  assert.equal(headOf(dest), c3);
  assert.equal(branchOf(dest), "main");
  assert.equal(await fs.readFile(path.join(dest, "README"), "utf8"), "three\n");
  assert.equal(
    await fs.readFile(path.join(dest, "untracked.txt"), "utf8"),
    "mine\n",
    "untracked files stay, as in Chef",
  );
});

test("git: sync moves between branches, tags and commits of one checkout", async () => {
  const dest = await destination();
  for (const [revision, sha, branch] of [
    ["main", repo.commits.c2, "main"],
    ["feature", repo.commits.feature, "feature"],
    ["v1", repo.commits.c1, ""],
    [repo.commits.c2.slice(0, 8), repo.commits.c2, ""],
  ] as const) {
    await convergeTwice(host, git, { destination: dest, repository: repo.bare, revision });
    assert.equal(headOf(dest), sha, revision);
    assert.equal(branchOf(dest), branch, revision);
  }
});

test("git: checkout clones when missing and then leaves the checkout where it is", async () => {
  const r = await fixture();
  const dest = await destination();
  const props = { destination: dest, repository: r.bare, revision: "main" };
  const first = await convergeTwice(host, git, props, { action: "checkout" });
  assert.equal(first[0]?.property, "ensure");
  r.commit("three");
  assert.deepEqual(await convergeTwice(host, git, props, { action: "checkout" }), []);
  assert.equal(headOf(dest), r.commits.c2);
});

test("git: a changed repository URL is a change, and sync points the remote at it", async () => {
  const dest = await destination();
  await convergeTwice(host, git, { destination: dest, repository: repo.bare, revision: "main" });
  const mirror = path.join(await tempDir("galley-t-git-"), "mirror.git");
  sh(path.dirname(mirror), "clone", "--quiet", "--mirror", repo.bare, mirror);
  const changes = await convergeTwice(host, git, { destination: dest, repository: mirror, revision: "main" });
  assert.deepEqual(changes, [{ property: "repository", from: repo.bare, to: mirror }]);
  assert.equal(sh(dest, "config", "--get", "remote.origin.url"), mirror);
});

test("git: depth makes a shallow clone", async () => {
  const dest = await destination();
  // file:// because git ignores --depth for plain local paths
  await convergeTwice(host, git, {
    destination: dest,
    repository: `file://${repo.bare}`,
    revision: "main",
    depth: 1,
  });
  assert.equal(sh(dest, "rev-parse", "--is-shallow-repository"), "true");
  assert.equal(sh(dest, "rev-list", "--count", "HEAD"), "1");
});

test("git: enableSubmodules checks out submodules at the recorded commit", async (t) => {
  // git refuses file:// submodules unless allowed; the resource passes the process environment on
  const allow = {
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: "protocol.file.allow",
    GIT_CONFIG_VALUE_0: "always",
  };
  Object.assign(process.env, allow);
  t.after(() => {
    for (const key of Object.keys(allow)) delete process.env[key];
  });
  const lib = await fixture();
  const app = await fixture();
  execFileSync("git", ["submodule", "add", "--quiet", lib.bare, "lib"], {
    cwd: app.work,
    env: { ...gitEnv, ...allow },
  });
  sh(app.work, "commit", "--quiet", "-m", "add lib");
  sh(app.work, "push", "--quiet", "origin", "main");
  const dest = await destination();
  await convergeTwice(host, git, {
    destination: dest,
    repository: app.bare,
    revision: "main",
    enableSubmodules: true,
  });
  assert.equal(headOf(path.join(dest, "lib")), lib.commits.c2);
  assert.equal(await fs.readFile(path.join(dest, "lib", "README"), "utf8"), "two\n");
});

test("git: an unknown revision fails naming the repository and the revision", async () => {
  const dest = await destination();
  const props = await prepare(git, { destination: dest, repository: repo.bare, revision: "no-such-branch" });
  const current = await git.read(host, props);
  assert.deepEqual(git.diff(current, props, "sync")[1], { property: "revision", to: "no-such-branch" });
  await assert.rejects(
    git.apply(host, props, "sync", current, context),
    new RegExp(`revision 'no-such-branch' not found in repository ${repo.bare}`),
  );
  await assert.rejects(fs.stat(dest), "a failed clone leaves nothing behind");
  const empty = await destination();
  await fs.mkdir(empty);
  const missing = await prepare(git, { destination: empty, repository: repo.bare, revision: "f".repeat(40) });
  await assert.rejects(git.apply(host, missing, "sync", await git.read(host, missing), context), /not found/);
  assert.deepEqual(await fs.readdir(empty), [], "an empty directory stays empty");
  const existing = await destination();
  await convergeTwice(host, git, { destination: existing, repository: repo.bare, revision: "main" });
  const bad = await prepare(git, { destination: existing, repository: repo.bare, revision: "deadbeef" });
  await assert.rejects(
    git.apply(host, bad, "sync", await git.read(host, bad), context),
    /revision 'deadbeef' not found/,
  );
  assert.equal(headOf(existing), repo.commits.c2, "a failed sync leaves the checkout where it was");
});

test("git: refuses to clone over a directory that is not a checkout", async () => {
  const dest = await destination();
  await fs.mkdir(dest);
  await fs.writeFile(path.join(dest, "precious"), "data");
  const props = await prepare(git, { destination: dest, repository: repo.bare });
  const current = await git.read(host, props);
  assert.deepEqual(git.diff(current, props, "sync")[0], {
    property: "ensure",
    from: "not a git checkout",
    to: "clone",
  });
  await assert.rejects(git.apply(host, props, "sync", current, context), /exists and is not a git checkout/);
  assert.deepEqual(await fs.readdir(dest), ["precious"]);
});

test("git: clones into an existing empty directory", async () => {
  const dest = await destination();
  await fs.mkdir(dest);
  const changes = await convergeTwice(host, git, {
    destination: dest,
    repository: repo.bare,
    revision: "v2",
  });
  assert.deepEqual(changes[0], { property: "ensure", from: "empty", to: "clone" });
  assert.equal(headOf(dest), repo.commits.c2);
});

test("git: user owns the checkout and git runs as that user", {
  skip: process.getuid?.() !== 0 && "needs root",
}, async () => {
  // a repository of its own, owned by nobody: git refuses repositories owned by someone else
  const r = await fixture();
  const rootOwned = await destination();
  await fs.chmod(path.dirname(rootOwned), 0o755);
  await convergeTwice(host, git, { destination: rootOwned, repository: r.bare, revision: "main" });
  await fs.chmod(path.dirname(r.bare), 0o755);
  execFileSync("chown", ["-R", "nobody", r.bare]);

  const dest = await destination();
  await fs.chmod(path.dirname(dest), 0o755);
  const props = { destination: dest, repository: r.bare, revision: "main", user: "nobody", group: "nogroup" };
  await convergeTwice(host, git, props);
  for (const file of [dest, path.join(dest, "README"), path.join(dest, ".git", "HEAD")]) {
    const stat = await fs.stat(file);
    assert.deepEqual([stat.uid, stat.gid], [65534, 65534], file);
  }

  // a checkout made by root is handed over when the user is added
  const changes = await convergeTwice(host, git, { ...props, destination: rootOwned });
  assert.deepEqual(changes, [
    { property: "owner", from: "root", to: "nobody" },
    { property: "group", from: "root", to: "nogroup" },
  ]);
  assert.equal((await fs.stat(path.join(rootOwned, "README"))).uid, 65534);
});

test("git: rejects unknown properties by name", () => {
  const result = v.safeParse(git.schema, { destination: "/srv/app", repository: "x", branch: "main" });
  assert.match(JSON.stringify(result.issues), /branch/);
  // option-like values would reach git's command line
  const issues = (props: object) =>
    JSON.stringify(v.safeParse(git.schema, { destination: "/srv/app", ...props }).issues);
  assert.match(issues({ repository: "--upload-pack=touch /tmp/x" }), /repository/);
  assert.match(issues({ repository: "x", revision: "--output=/tmp/x" }), /revision/);
  assert.match(issues({ repository: "x", remote: "-x" }), /remote/);
});
