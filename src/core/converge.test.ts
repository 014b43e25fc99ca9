import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { compileRunList } from "../cookbooks/solo.ts";
import { LocalHost } from "../hosts/local.ts";
import { resourceTypes } from "../resources/index.ts";
import { tempDir } from "../resources/testing.ts";
import { converge } from "./converge.ts";
import { defineResourceType, type ResourceType } from "./resource.ts";

const host = new LocalHost();

/** Compiles and converges a one-recipe kitchen; `$` in the body is replaced by a fresh temp dir. */
async function run(
  body: string,
  options: {
    mode?: "apply" | "plan";
    out?: string;
    state?: string;
    types?: Record<string, ResourceType>;
  } = {},
) {
  const out = options.out ?? (await tempDir());
  const root = await makeKitchen({ app: { recipes: { default: recipe(body.replaceAll("$", out)) } } });
  const types = options.types ?? resourceTypes;
  const catalog = await compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
    types,
  });
  const stateDir = options.state ?? (await tempDir());
  const report = await converge(catalog, host, { mode: options.mode ?? "apply", stateDir, types });
  const status = Object.fromEntries(report.resources.map((r) => [r.id.replace(out, "$"), r.status]));
  return { report, status, out, stateDir };
}

test("converge: a failed resource skips only its dependents; the rest converge and the run fails", async () => {
  const { report, status, out } = await run(`
    r.directory("$/missing/deep", {});
    r.file("$/missing/deep/f", { content: "x" });
    r.file("$/independent", { content: "y" });`);
  assert.equal(report.status, "failed");
  assert.deepEqual(status, {
    "directory[$/missing/deep]": "failed",
    "file[$/missing/deep/f]": "skipped",
    "file[$/independent]": "changed",
  });
  assert.match(report.resources[0]!.error!.message, /parent of .* does not exist/);
  assert.equal(report.resources[1]!.reason, `directory[${out}/missing/deep] failed`);
  assert.equal(await fs.readFile(path.join(out, "independent"), "utf8"), "y");
});

test("converge: delayed notifications are deduplicated and fire once at the end; immediate ones at once", async () => {
  const body = `
    r.execute("log", { command: "echo run >> $/log", action: "nothing" });
    r.file("$/a", { content: "a", notifies: { action: "run", resource: "execute[log]" } });
    r.file("$/b", { content: "b", notifies: { action: "run", resource: "execute[log]" } });
    r.file("$/c", { content: "c", notifies: { action: "run", resource: "execute[now]", timing: "immediate" } });
    r.execute("now", { command: "echo now >> $/log", action: "nothing" });
    r.file("$/d", { content: "d" });`;
  const first = await run(body);
  assert.equal(first.report.status, "ok");
  assert.equal(await fs.readFile(path.join(first.out, "log"), "utf8"), "now\nrun\n");
  const log = first.report.resources.find((r) => r.id === "execute[log]")!;
  assert.equal(log.status, "changed");
  assert.equal(log.notified?.length, 1);
  const second = await run(body, { out: first.out, state: first.stateDir });
  assert.equal(second.report.summary.changed, 0);
  assert.equal(await fs.readFile(path.join(first.out, "log"), "utf8"), "now\nrun\n");
});

test("converge: a notification that cannot be delivered is kept and delivered by the next run", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const failing = `
    r.file("$/conf", { content: "v1", notifies: { action: "run", resource: "execute[restart]" } });
    r.file("$/gate", { content: "g", onlyIf: "test -e $/open", requires: "file[$/conf]" });
    r.directory("$/no/parent", {});
    r.execute("restart", { command: "echo restarted >> $/log", action: "nothing", requires: "directory[$/no/parent]" });`;
  const first = await run(failing, { out, state });
  assert.equal(first.report.status, "failed");
  assert.equal(first.status["execute[restart]"], "skipped");
  assert.deepEqual(
    first.report.notifications.kept.map((n) => [n.target, n.action]),
    [["execute[restart]", "run"]],
  );
  assert.match(await fs.readFile(path.join(state, "notifications.json"), "utf8"), /execute\[restart\]/);
  // the next run: conf is unchanged now, the dependency is fixed, and the kept notification fires
  const fixed = failing.replace(
    'r.directory("$/no/parent", {});',
    'r.directory("$/no/parent", { recursive: true });',
  );
  const second = await run(fixed, { out, state });
  assert.equal(second.report.status, "ok");
  assert.equal(second.status["file[$/conf]"], "unchanged");
  assert.equal(second.status["execute[restart]"], "changed");
  assert.equal(second.report.notifications.fromPreviousRun.length, 1);
  assert.equal(await fs.readFile(path.join(out, "log"), "utf8"), "restarted\n");
  assert.doesNotMatch(await fs.readFile(path.join(state, "notifications.json"), "utf8"), /execute/);
  const third = await run(fixed, { out, state });
  assert.equal(third.report.summary.changed, 0);
});

test("converge: plan reads and diffs, changes nothing and runs no notification", async () => {
  const out = await tempDir();
  await fs.writeFile(path.join(out, "conf"), "old\n");
  const { report, status } = await run(
    `r.file("$/conf", { content: "new\\n", notifies: { action: "run", resource: "execute[hook]" } });
     r.execute("hook", { command: "touch $/hooked", action: "nothing" });
     r.directory("$/dir", {});`,
    { mode: "plan", out },
  );
  assert.deepEqual(status, {
    "file[$/conf]": "pending",
    "execute[hook]": "pending",
    "directory[$/dir]": "pending",
  });
  assert.equal(report.summary.pending, 3);
  assert.match(report.resources[0]!.diff!.find((c) => c.property === "content")!.diff!, /-old\n\+new/);
  assert.equal(await fs.readFile(path.join(out, "conf"), "utf8"), "old\n");
  await assert.rejects(fs.stat(path.join(out, "hooked")));
  await assert.rejects(fs.stat(path.join(out, "dir")));
});

test("converge: guards as commands and functions skip a resource", async () => {
  const { status } = await run(`
    r.file("$/yes", { content: "1", onlyIf: "true" });
    r.file("$/no", { content: "1", onlyIf: ["false"] });
    r.file("$/not", { content: "1", notIf: async ({ host }) => (await host.stat("/")) !== undefined });`);
  assert.deepEqual(status, { "file[$/yes]": "changed", "file[$/no]": "skipped", "file[$/not]": "skipped" });
});

test("converge: retries, ignoreFailure, and a sensitive resource's values never reach the report", async () => {
  const { report, status } = await run(`
    r.execute("flaky", { command: "test -e $/flag || { touch $/flag; exit 1; }", retries: 1, retryDelay: 0 });
    r.execute("broken", { command: "exit 3", ignoreFailure: true });
    r.file("$/secret", { content: "hunter2-password", sensitive: true });
    r.execute("leaky", { command: "echo hunter2-password >&2; exit 1", sensitive: true });`);
  assert.equal(status["execute[flaky]"], "changed");
  assert.equal(status["execute[broken]"], "failed");
  assert.equal(report.resources[1]!.ignored, true);
  assert.equal(report.summary.ignored, 1);
  assert.equal(status["execute[leaky]"], "failed");
  assert.equal(report.status, "failed");
  const text = JSON.stringify(report);
  assert.doesNotMatch(text, /hunter2/);
  assert.match(text, /\(sensitive\)/);
});

test("converge: a type whose diff is not empty after its own apply is refused as a resource type error", async () => {
  const sloppy = defineResourceType({
    type: "sloppy",
    description: "never converges",
    actions: ["create"],
    schema: v.strictObject({ name: v.string() }),
    nameProperty: "name",
    key: (props: { name: string }) => props.name,
    read: async () => ({ value: 1 }),
    diff: () => [{ property: "value", from: 1, to: 2 }],
    apply: async () => {},
  });
  const { report } = await run(`r.resource("sloppy", "x");`, { types: { ...resourceTypes, sloppy } });
  assert.equal(report.resources[0]!.status, "failed");
  assert.equal(report.resources[0]!.error?.code, "RESOURCE_TYPE_ERROR");
  assert.match(
    report.resources[0]!.error!.message,
    /resource type error: sloppy still differs right after its own create: value/,
  );
});

test("converge: a resource is read again when something it depends on changed", async () => {
  const { report, out } = await run(`
    r.execute("writer", { command: "printf made > $/f", creates: "$/f" });
    r.file("$/f", { content: "final", requires: "execute[writer]" });`);
  assert.equal(report.status, "ok");
  assert.equal(await fs.readFile(path.join(out, "f"), "utf8"), "final");
  const fileDiff = report.resources[1]!.diff!.map((c) => c.property);
  assert.deepEqual(fileDiff, ["content"]);
});

test("converge: a directory created where nothing was does not make the files below it read again", async () => {
  const out = await tempDir();
  const root = await makeKitchen({
    app: {
      recipes: {
        default: recipe(`
          r.directory("${out}/new", {});
          r.file("${out}/new/a", { content: "a" });
          r.directory("${out}/new/sub", { mode: "0700" });
          r.file("${out}/other", { content: "o", requires: "directory[${out}/new]" });`),
      },
    },
  });
  const catalog = await compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
  });
  const { stats, counting } = countingHost();
  const report = await converge(catalog, counting, {
    mode: "apply",
    stateDir: await tempDir(),
    types: resourceTypes,
  });
  assert.equal(report.summary.changed, 4);
  // read once ahead and once after its own apply: never again because new/ was created
  assert.equal(stats.get(`${out}/new/a`), 2);
  assert.equal(stats.get(`${out}/new/sub`), 2);
  assert.equal(stats.get(`${out}/other`), 2);
  const again = await converge(catalog, counting, {
    mode: "apply",
    stateDir: await tempDir(),
    types: resourceTypes,
  });
  assert.equal(again.summary.changed, 0);
});

test("converge: a directory whose mode changed still makes what depends on it read again", async () => {
  const out = await tempDir();
  await fs.mkdir(path.join(out, "old"), { mode: 0o700 });
  const root = await makeKitchen({
    app: {
      recipes: {
        default: recipe(
          `r.directory("${out}/old", { mode: "0755" }); r.file("${out}/old/a", { content: "a" });`,
        ),
      },
    },
  });
  const catalog = await compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
  });
  const { stats, counting } = countingHost();
  await converge(catalog, counting, { mode: "apply", stateDir: await tempDir(), types: resourceTypes });
  assert.equal(stats.get(`${out}/old/a`), 3);
});

/** A local host that counts the stats asked for each path. */
function countingHost() {
  const stats = new Map<string, number>();
  const counting = new LocalHost();
  const stat = counting.stat.bind(counting);
  counting.stat = (file: string) => {
    stats.set(file, (stats.get(file) ?? 0) + 1);
    return stat(file);
  };
  return { stats, counting };
}

test("converge: a run where nothing changes writes nothing, not even to the state dir", async () => {
  const body = `
    r.file("$/a", { content: "a", notifies: { action: "run", resource: "execute[log]" } });
    r.file("$/b", { content: "b", notifies: { action: "run", resource: "execute[log]", timing: "immediate" } });
    r.execute("log", { command: "echo run >> $/log", action: "nothing" });`;
  const first = await run(body);
  assert.equal(first.report.summary.changed, 3);
  const host = new LocalHost();
  const calls: string[] = [];
  for (const method of [
    "writeFile",
    "mkdir",
    "remove",
    "rename",
    "symlink",
    "chmod",
    "chown",
    "exec",
  ] as const) {
    const original = (host[method] as (...args: unknown[]) => Promise<unknown>).bind(host);
    (host as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      calls.push(`${method} ${String(args[0])}`);
      return original(...args);
    };
  }
  const root = await makeKitchen({ app: { recipes: { default: recipe(body.replaceAll("$", first.out)) } } });
  const catalog = await compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
  });
  const before = await fs.readdir(first.stateDir);
  const again = await converge(catalog, host, {
    mode: "apply",
    stateDir: first.stateDir,
    types: resourceTypes,
  });
  assert.equal(again.summary.changed, 0);
  assert.deepEqual(calls, []);
  assert.deepEqual(await fs.readdir(first.stateDir), before);
});

test("converge: notifications kept by an older Galley (pending-notifications.json) are delivered, then that file goes", async () => {
  const out = await tempDir();
  const state = await tempDir();
  await fs.writeFile(
    path.join(state, "pending-notifications.json"),
    JSON.stringify({
      version: 1,
      notifications: [
        { target: "execute[restart]", action: "run", by: "file[/x]", since: "2026-01-01T00:00:00Z" },
      ],
    }),
  );
  const { report } = await run(
    `r.file("$/conf", { content: "c" }); r.execute("restart", { command: "echo restarted >> $/log", action: "nothing" });`,
    { out, state },
  );
  assert.equal(report.status, "ok");
  assert.equal(await fs.readFile(path.join(out, "log"), "utf8"), "restarted\n");
  assert.deepEqual(await fs.readdir(state), ["notifications.json"]);
});
