import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { converge } from "../src/core/converge.ts";
import type { Report } from "../src/core/report.ts";
import { compileRun } from "../src/cookbooks/solo.ts";
import { releaseRecipes, releaseTarget } from "../src/lifecycle/releases.ts";
import { LocalHost } from "../src/hosts/local.ts";
import { tempDir } from "../src/resources/testing.ts";
import { stackSchema } from "../src/stacks/schema.ts";
import { buildStackState, type DeployingApp, StackView } from "../src/stacks/state.ts";

// Galley's release recipes converged on this machine: temp folders as deploy_to, a real tar.gz
// as the shipped archive, restart a command that appends to a file (how often it ran).

const host = new LocalHost("app1");

interface Setup {
  deployTo: string;
  archive: string;
  restarts: string;
  stateDir: string;
  cookbooks: string;
}

async function setup(): Promise<Setup> {
  const root = await tempDir("galley-release-");
  const source = path.join(root, "src");
  await fs.mkdir(path.join(source, "log"), { recursive: true });
  await fs.writeFile(path.join(source, "server.js"), "console.log('hello')\n");
  await fs.writeFile(path.join(source, "log", "from-archive.log"), "replaced by the shared dir\n");
  const archive = path.join(root, "hello.tar.gz");
  execFileSync("tar", ["-czf", archive, "-C", source, "."]);
  const cookbooks = path.join(root, "cookbooks");
  await fs.mkdir(cookbooks);
  const deployTo = path.join(root, "srv");
  return {
    deployTo,
    archive,
    restarts: path.join(root, "restarts"),
    stateDir: path.join(root, "state"),
    cookbooks,
  };
}

function stackOf(s: Setup, release: Record<string, unknown> = {}) {
  return v.parse(stackSchema, {
    name: "web",
    layers: [{ name: "app" }],
    instances: [{ name: "app1", layers: ["app"] }],
    apps: [
      {
        name: "hello",
        layers: ["app"],
        source: { type: "archive", url: s.archive },
        environment: { PORT: "3000" },
        release: {
          deploy_to: s.deployTo,
          keep: 5,
          shared: { files: [".env"], dirs: ["log", "tmp/cache"] },
          build: "echo built >> BUILD",
          restart: `echo "$GALLEY_DEPLOYMENT" >> ${s.restarts}`,
          hooks: { before_symlink: "touch before-symlink", before_restart: { recipes: ["app::warm"] } },
          ...release,
        },
      },
    ],
  });
}

/** Compiles one release recipe for deployment `id` and converges it here. */
async function run(
  s: Setup,
  recipe: string,
  id: number,
  release: Record<string, unknown> = {},
): Promise<Report> {
  const stack = stackOf(s, release);
  const state = buildStackState(stack, [{ name: "app1", status: "online", address: "127.0.0.1" }]);
  const app = stack.apps[0]!;
  const deploying: DeployingApp = {
    ...state.apps[0]!,
    revision: `rev${id}`,
    archive: s.archive,
    release: releaseTarget(app, id)!,
  };
  const view = new StackView(state, "app1", { event: "deploy", version: 1, deploying: [deploying] });
  const { catalog, types } = await compileRun({
    runList: [recipe],
    cookbooksDir: s.cookbooks,
    attributeFiles: [],
    host,
    stack: view,
  });
  return converge(catalog, host, { mode: "apply", stateDir: s.stateDir, types });
}

const prepare = (s: Setup, id: number, release?: Record<string, unknown>) =>
  run(s, releaseRecipes.prepare, id, release);
const switchTo = (s: Setup, id: number, release?: Record<string, unknown>) =>
  run(s, releaseRecipes.switch, id, release);

function ok(report: Report): Report {
  const failed = report.resources.filter((r) => r.status === "failed");
  assert.equal(report.status, "ok", JSON.stringify(failed));
  return report;
}

const changed = (report: Report) => report.resources.filter((r) => r.status === "changed").map((r) => r.id);
const read = (file: string) => fs.readFile(file, "utf8").catch(() => undefined);
const list = async (dir: string) => (await fs.readdir(dir)).sort();

async function withSharedEnv(s: Setup): Promise<void> {
  await fs.mkdir(path.join(s.deployTo, "hello", "shared"), { recursive: true });
  await fs.writeFile(path.join(s.deployTo, "hello", "shared", ".env"), "PORT=3000\n");
}

test("release prepare: unpacks, links shared paths, builds once; the second run changes nothing", async () => {
  const s = await setup();
  await withSharedEnv(s);
  const first = ok(await prepare(s, 1));
  assert.ok(first.summary.changed > 0);
  const dir = path.join(s.deployTo, "hello");
  const release = path.join(dir, "releases", "1");
  assert.equal(await read(path.join(release, "server.js")), "console.log('hello')\n");
  assert.equal(await read(path.join(release, "REVISION")), "rev1\n");
  assert.equal(await fs.readlink(path.join(release, ".env")), path.join(dir, "shared", ".env"));
  assert.equal(await fs.readlink(path.join(release, "log")), path.join(dir, "shared", "log"));
  assert.equal(
    await fs.readlink(path.join(release, "tmp", "cache")),
    path.join(dir, "shared", "tmp", "cache"),
  );
  // the archive's own log/ made way for the shared dir
  assert.deepEqual(await list(path.join(dir, "shared", "log")), []);
  assert.equal(await read(path.join(release, "BUILD")), "built\n");
  assert.ok((await read(path.join(release, ".galley-built"))) !== undefined);
  assert.ok((await read(path.join(release, "before-symlink"))) !== undefined);
  // prepare never touches current
  assert.deepEqual(await list(dir), ["releases", "shared"]);
  assert.deepEqual(await list(path.join(dir, "releases")), ["1"]);

  const second = ok(await prepare(s, 1));
  assert.deepEqual(changed(second), []);
  assert.equal(second.summary.changed, 0);
  assert.equal(await read(path.join(release, "BUILD")), "built\n");
});

test("release switch: current, revisions.log and restart once; switching again changes nothing", async () => {
  const s = await setup();
  await withSharedEnv(s);
  ok(await prepare(s, 1));
  const dir = path.join(s.deployTo, "hello");
  const first = ok(await switchTo(s, 1));
  assert.equal(await fs.readlink(path.join(dir, "current")), path.join(dir, "releases", "1"));
  assert.equal(await read(s.restarts), "1\n");
  const log = (await read(path.join(dir, "revisions.log")))!.trim().split("\n");
  assert.equal(log.length, 1);
  assert.match(log[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ 1 rev1$/);
  assert.ok(changed(first).includes(`link[${dir}/current]`));

  const second = ok(await switchTo(s, 1));
  assert.equal(second.summary.changed, 0);
  assert.equal(await read(s.restarts), "1\n", "restart ran once");
  assert.equal((await read(path.join(dir, "revisions.log")))!.trim().split("\n").length, 1);
});

test("release rollback: switching back to a release on disk changes only the link, and restarts", async () => {
  const s = await setup();
  await withSharedEnv(s);
  const dir = path.join(s.deployTo, "hello");
  ok(await prepare(s, 1));
  ok(await switchTo(s, 1));
  ok(await prepare(s, 2));
  ok(await switchTo(s, 2));
  assert.equal(await fs.readlink(path.join(dir, "current")), path.join(dir, "releases", "2"));

  // back to 1: its release is still there, so prepare changes nothing and switch only relinks
  assert.equal(ok(await prepare(s, 1)).summary.changed, 0);
  const back = ok(await switchTo(s, 1));
  assert.deepEqual(changed(back), [
    `link[${dir}/current]`,
    "execute[hello release 1: revisions.log]",
    "execute[hello release 1: restart]",
  ]);
  assert.equal(await fs.readlink(path.join(dir, "current")), path.join(dir, "releases", "1"));
  assert.equal(await read(s.restarts), "1\n2\n1\n");
  const log = (await read(path.join(dir, "revisions.log")))!.trim().split("\n");
  assert.deepEqual(
    log.map((line) => line.split(" ").slice(1).join(" ")),
    ["1 rev1", "2 rev2", "1 rev1"],
  );
  assert.deepEqual(await list(path.join(dir, "releases")), ["1", "2"]);
});

test("release keep: 2 keeps the two most recently used, never the one current points at", async () => {
  const s = await setup();
  await withSharedEnv(s);
  const dir = path.join(s.deployTo, "hello");
  const keep = { keep: 2 };
  for (const id of [1, 2, 3]) {
    ok(await prepare(s, id, keep));
    ok(await switchTo(s, id, keep));
  }
  assert.deepEqual(await list(path.join(dir, "releases")), ["2", "3"]);
  // roll back to 2, then prepare 4 and 5 without switching to them (failed deployments): 2 (current)
  // and 3 (used just before) stay, releases never switched to go first
  ok(await switchTo(s, 2, keep));
  ok(await prepare(s, 4, keep));
  ok(await prepare(s, 5, keep));
  const cleaned = ok(await switchTo(s, 2, keep));
  assert.deepEqual(await list(path.join(dir, "releases")), ["2", "3"]);
  assert.equal(cleaned.summary.changed, 1, "only the old releases' removal changed");
  assert.equal(await fs.readlink(path.join(dir, "current")), path.join(dir, "releases", "2"));
  // in state: nothing more to remove
  assert.equal(ok(await switchTo(s, 2, keep)).summary.changed, 0);
  // a release rolled back to is the most recently used: deploying 6 then keeps 6 and 2, not 3
  ok(await prepare(s, 6, keep));
  ok(await switchTo(s, 6, keep));
  assert.deepEqual(await list(path.join(dir, "releases")), ["2", "6"]);
});

test("release prepare: a shared file missing from shared/ fails naming it, and nothing is switched", async () => {
  const s = await setup();
  const report = await prepare(s, 1);
  assert.equal(report.status, "failed");
  const failed = report.resources.filter((r) => r.status === "failed");
  assert.equal(failed.length, 1);
  assert.match(
    failed[0]!.error!.message,
    /the shared file \.env is missing: create .*\/hello\/shared\/\.env/,
  );
  const dir = path.join(s.deployTo, "hello");
  // nothing unpacked, no current
  assert.deepEqual(await list(path.join(dir, "releases")), []);
  assert.equal(await fs.lstat(path.join(dir, "current")).catch(() => undefined), undefined);
  // and switching to it refuses: the release is not there
  const switched = await switchTo(s, 1);
  assert.equal(switched.status, "failed");
  assert.match(JSON.stringify(switched.resources), /release 1 is not on this host/);
  assert.equal(await fs.lstat(path.join(dir, "current")).catch(() => undefined), undefined);
});

test("release user: the release belongs to the user, and build runs as the user", async () => {
  const s = await setup();
  // the user must reach the release through the temp folders
  await fs.chmod(path.dirname(s.deployTo), 0o755);
  await withSharedEnv(s);
  const user = { user: "nobody", build: "id -un > BUILD" };
  ok(await prepare(s, 1, user));
  const release = path.join(s.deployTo, "hello", "releases", "1");
  assert.equal(await read(path.join(release, "BUILD")), "nobody\n");
  const owner = async (file: string) => (await host.stat(file))?.owner;
  assert.equal(await owner(release), "nobody");
  assert.equal(await owner(path.join(release, "server.js")), "nobody");
  assert.equal(await owner(path.join(s.deployTo, "hello", "shared", "log")), "nobody");
  assert.equal(ok(await prepare(s, 1, user)).summary.changed, 0);
});

test("release switch: a restart that failed runs again at the next switch, though current is in place", async () => {
  const s = await setup();
  await withSharedEnv(s);
  const ready = path.join(path.dirname(s.deployTo), "ready");
  const release = { restart: `test -e ${ready} && echo "$GALLEY_DEPLOYMENT" >> ${s.restarts}` };
  ok(await prepare(s, 1, release));
  const failed = await switchTo(s, 1, release);
  assert.equal(failed.status, "failed");
  assert.equal(await read(s.restarts), undefined);
  await fs.writeFile(ready, "");
  const again = ok(await switchTo(s, 1, release));
  assert.equal(await read(s.restarts), "1\n");
  assert.deepEqual(changed(again), ["execute[hello release 1: restart]"]);
  assert.equal(ok(await switchTo(s, 1, release)).summary.changed, 0);
});
