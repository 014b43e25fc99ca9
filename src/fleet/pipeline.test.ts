import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { cli } from "../../test/support/cli.ts";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { openBundleCookbooks } from "../cli/bundle-open.ts";
import { prepareCookbooks, preparedBundleFile } from "../cookbooks/prepared.ts";
import type { Facts } from "../core/host.ts";
import { LocalHost } from "../hosts/local.ts";
import { tempDir } from "../resources/testing.ts";
import {
  compileHost,
  type FleetMember,
  type HostOutcome,
  type HostPhase,
  runFleet,
  stageOf,
} from "./pipeline.ts";

// Real local hosts (the local transport), each with its own home and so its own state dir, and a
// real kitchen locked by `galley cookbooks install`: nothing here stands in for a part of Galley.

/** The local machine as a fleet host named `name`, whose login's home (and state dir) is `home`. */
class HomeHost extends LocalHost {
  readonly #home: string;
  constructor(name: string, home: string) {
    super(name);
    this.#home = home;
  }
  override async facts(): Promise<Facts> {
    const facts = await super.facts();
    return { ...facts, user: { ...facts.user, uid: 1000, home: this.#home } };
  }
  async close(): Promise<void> {}
}

const webRecipe = recipe(`  r.file(r.attrs.out + "/motd", { content: r.attrs.greeting + " from web\\n" });
  if (r.attrs.fail) r.execute("false", { command: ["false"] });`);

/** A kitchen with cookbook web, locked; GALLEY_CACHE_DIR points at its own cache. */
async function lockedKitchen() {
  const root = await makeKitchen({
    web: { recipes: { default: webRecipe }, attributes: { "default.yaml": "greeting: hello\n" } },
  });
  await fs.writeFile(path.join(root, "cookbooks.yaml"), "cookbooks:\n  web: { path: ./cookbooks/web }\n");
  const cache = await tempDir("galley-t-cache-");
  process.env.GALLEY_CACHE_DIR = cache;
  const installed = cli(["cookbooks", "install"], root, { GALLEY_CACHE_DIR: cache });
  assert.equal(installed.code, 0, installed.stderr);
  return { root, cache };
}

async function members(names: string[], extra: Record<string, Record<string, unknown>> = {}) {
  const list: FleetMember[] = [];
  const hosts = new Map<string, HomeHost>();
  for (const name of names) {
    const home = await tempDir(`galley-t-${name}-`);
    hosts.set(name, new HomeHost(name, home));
    list.push({
      name,
      target: { name } as FleetMember["target"],
      attributes: [
        { source: { level: "instance", label: `host ${name}` }, values: { out: home, ...extra[name] } },
      ],
    });
  }
  return { list, connect: async (target: { name: string }) => hosts.get(target.name)! };
}

test("push to several hosts resolves the kitchen once: every host compiles from the prepared set, with one bundle id", async () => {
  const { root, cache } = await lockedKitchen();
  const { list, connect } = await members(["a", "b", "c"]);
  const cookbooksDir = path.join(root, "cookbooks");
  let resolved = 0;
  const outcomes = await runFleet({
    batches: [list],
    mode: "apply",
    forks: 1,
    compile: { runList: ["web"], cookbooksDir, attributeFiles: [] },
    connect,
    onResolved: () => {
      resolved += 1;
      // no host may read the kitchen after the resolve stage: it is gone before the first connects
      return fs.rename(cookbooksDir, `${cookbooksDir}.gone`);
    },
  });
  assert.equal(resolved, 1);
  const ids = new Set<string>();
  for (const [name, outcome] of outcomes) {
    assert.equal(outcome.status, "ok", JSON.stringify(outcome));
    assert.ok("report" in outcome && outcome.report.bundle);
    ids.add(outcome.report.bundle);
    const home = (list.find((m) => m.name === name)!.attributes[0]!.values as { out: string }).out;
    assert.equal(await fs.readFile(path.join(home, "motd"), "utf8"), "hello from web\n");
  }
  assert.equal(ids.size, 1);
  // one set was prepared for the three hosts: one bundle in the cache, one extraction
  const kept = (await fs.readdir(path.join(cache, "bundles"))).filter((n) => !n.startsWith("."));
  assert.deepEqual(kept.sort(), [...ids].flatMap((id) => [id, `${id}.tgz`]).sort());
  // the id is the one `galley bundle` prints for the same lock and run list
  await fs.rename(`${cookbooksDir}.gone`, cookbooksDir);
  const bundled = cli(["bundle", "web", "--json", "--out", path.join(root, "web.tgz")], root);
  assert.equal(bundled.code, 0, bundled.stderr);
  assert.equal([...ids][0], (JSON.parse(bundled.stdout) as { id: string }).id);
});

test("a recorded id runs again from the cache with exactly the same catalog, whatever the kitchen became", async () => {
  const { root, cache } = await lockedKitchen();
  const cookbooksDir = path.join(root, "cookbooks");
  const prepared = await prepareCookbooks({ cookbooksDir, runLists: { default: ["web"] } });
  assert.equal(prepared.kind, "bundle");
  const host = new HomeHost("solo", await tempDir("galley-t-solo-"));
  const options = { runList: ["web"], cookbooksDir, attributeFiles: [], host };
  const first = await compileHost(prepared, {
    ...options,
    layers: [{ source: { level: "run", label: "t" }, values: { out: "/tmp/x" } }],
  });
  // the kitchen moves on: another greeting, locked again
  await fs.writeFile(path.join(cookbooksDir, "web", "attributes", "default.yaml"), "greeting: bye\n");
  assert.equal(cli(["cookbooks", "install"], root).code, 0);
  const file = preparedBundleFile(prepared.id, cache);
  assert.ok(existsSync(file));
  const again = await openBundleCookbooks(file);
  assert.equal(again.id, prepared.id);
  assert.deepEqual(again.runList, ["web"]);
  const rerun = await compileHost(
    { id: again.id, kind: "bundle", cookbooks: again.cookbooks, runLists: { default: again.runList } },
    { ...options, layers: [{ source: { level: "run", label: "t" }, values: { out: "/tmp/x" } }] },
  );
  assert.deepEqual(rerun.catalog.resources, first.catalog.resources);
  assert.deepEqual(rerun.catalog.edges, first.catalog.edges);
  const now = await prepareCookbooks({ cookbooksDir, runLists: { default: ["web"] } });
  assert.notEqual(now.id, prepared.id);
});

test("batches run in order, each finished before the next; a stop rule skips the later batches", async () => {
  const { root } = await lockedKitchen();
  const { list, connect } = await members(["a", "b", "c", "d", "e"], { c: { fail: true } });
  const [a, b, c, d, e] = list as [FleetMember, FleetMember, FleetMember, FleetMember, FleetMember];
  const events: string[] = [];
  let asked: string[] = [];
  const outcomes = await runFleet({
    batches: [[a], [b, c], [d, e]],
    mode: "apply",
    forks: 2,
    compile: { runList: ["web"], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
    connect,
    onPhase: (name, phase) => {
      if (phase.phase === "connecting" || phase.phase === "done") events.push(`${name} ${phase.phase}`);
    },
    stop: (done) => {
      asked = [...done.keys()];
      const failed = [...done].filter(([, o]) => o.status !== "ok").map(([n]) => n);
      return failed.length ? `stopped: ${failed.join(", ")} failed` : undefined;
    },
  });
  const at = (event: string) => events.indexOf(event);
  assert.ok(at("a done") < at("b connecting") && at("a done") < at("c connecting"), events.join("; "));
  assert.deepEqual(asked.sort(), ["a", "b", "c"]);
  assert.equal(outcomes.get("a")!.status, "ok");
  assert.equal(outcomes.get("b")!.status, "ok");
  assert.equal(outcomes.get("c")!.status, "failed");
  for (const name of ["d", "e"]) {
    const outcome = outcomes.get(name) as HostOutcome;
    assert.deepEqual(outcome, { status: "skipped", reason: "stopped: c failed", durationMs: 0 });
    assert.ok(!events.includes(`${name} connecting`));
  }
  assert.deepEqual([...outcomes.keys()], ["a", "b", "c", "d", "e"]);
});

test("a kitchen that cannot be resolved fails every host with why, before any is contacted", async () => {
  const { root } = await lockedKitchen();
  await fs.appendFile(path.join(root, "cookbooks", "web", "recipes", "default.ts"), "// changed\n");
  const { list, connect } = await members(["a", "b"]);
  const phases: HostPhase[] = [];
  const outcomes = await runFleet({
    batches: [list],
    mode: "plan",
    forks: 2,
    compile: { runList: ["web"], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
    connect,
    onPhase: (_name, phase) => phases.push(phase),
  });
  for (const outcome of outcomes.values()) {
    assert.equal(outcome.status, "failed");
    assert.ok("error" in outcome && outcome.error.code === "LOCK_INVALID", JSON.stringify(outcome));
  }
  assert.deepEqual([...new Set(phases.map(stageOf))], ["resolve", "report"]);
});

test("unlocked kitchens and recipe files get a digest id over the content read", async () => {
  const root = await makeKitchen({ web: { recipes: { default: webRecipe } } });
  const cookbooksDir = path.join(root, "cookbooks");
  const site = path.join(root, "site.ts");
  await fs.writeFile(site, recipe(`  r.file("/tmp/galley-site", { content: "x" });`));
  const id = async (items: string[]) =>
    (await prepareCookbooks({ cookbooksDir, runLists: { default: items } })).id;
  const plain = await id(["web"]);
  assert.match(plain, /^digest:[0-9a-f]{64}$/);
  assert.equal(await id(["web"]), plain);
  const withFile = await id(["web", site]);
  assert.notEqual(withFile, plain);
  await fs.appendFile(site, "// changed\n");
  assert.notEqual(await id(["web", site]), withFile);
  await fs.appendFile(path.join(cookbooksDir, "web", "recipes", "default.ts"), "// changed\n");
  assert.notEqual(await id(["web"]), plain);
});

test("galley apply and plan record the prepared run's id: the one galley bundle prints; --bundle of the kept file runs it again", async () => {
  const { root, cache } = await lockedKitchen();
  const out = await tempDir("galley-t-apply-");
  const attrs = path.join(out, "attrs.yaml");
  await fs.writeFile(attrs, `out: ${out}\n`);
  const env = { GALLEY_CACHE_DIR: cache };
  const stateDir = path.join(out, "state");
  const bundled = cli(["bundle", "web", "--json", "--out", path.join(out, "web.tgz")], root, env);
  assert.equal(bundled.code, 0, bundled.stderr);
  const id = (JSON.parse(bundled.stdout) as { id: string }).id;
  const plan = cli(["plan", "web", "--attrs", attrs, "--state-dir", stateDir, "--json"], root, env);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal((JSON.parse(plan.stdout) as { bundle: string }).bundle, id);
  const applied = cli(["apply", "web", "--attrs", attrs, "--state-dir", stateDir, "--json"], root, env);
  assert.equal(applied.code, 0, applied.stderr);
  assert.equal((JSON.parse(applied.stdout) as { bundle: string }).bundle, id);
  assert.equal(await fs.readFile(path.join(out, "motd"), "utf8"), "hello from web\n");
  // the kept bundle runs again from anywhere, with the same id
  const kept = preparedBundleFile(id, cache);
  const again = cli(
    ["plan", "--bundle", kept, "--attrs", attrs, "--state-dir", stateDir, "--json"],
    out,
    env,
  );
  assert.equal(again.code, 0, again.stderr);
  const report = JSON.parse(again.stdout) as {
    bundle: string;
    summary: { pending: number; unchanged: number };
  };
  assert.equal(report.bundle, id);
  assert.deepEqual([report.summary.pending, report.summary.unchanged], [0, 1]);
});

test("an event's run lists: one shared list is the bundle's default, Galley's own recipes left out; different lists are kept per instance", async () => {
  const { root, cache } = await lockedKitchen();
  const cookbooksDir = path.join(root, "cookbooks");
  const builtin = "/opt/galley/src/lifecycle/recipes/packages.ts";
  const shared = await prepareCookbooks({
    cookbooksDir,
    runLists: { app1: [builtin, "web"], app2: ["web"] },
    builtins: new Set([builtin]),
  });
  const bundled = cli(["bundle", "web", "--json", "--out", path.join(cache, "web.tgz")], root);
  assert.equal(bundled.code, 0, bundled.stderr);
  assert.equal(shared.id, (JSON.parse(bundled.stdout) as { id: string }).id);
  assert.deepEqual(shared.runLists, { default: ["web"] });
  const apart = await prepareCookbooks({
    cookbooksDir,
    runLists: { app1: ["web"], db1: ["web::default", "web"] },
  });
  assert.deepEqual(apart.runLists, { app1: ["web"], db1: ["web::default", "web"] });
  const opened = await openBundleCookbooks(apart.file!, { items: ["web"] });
  assert.equal(opened.id, apart.id);
  assert.notEqual(apart.id, shared.id);
});
