import assert from "node:assert/strict";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { compileRunList } from "../cookbooks/solo.ts";
import { type ConvergeEvent, converge } from "../core/converge.ts";
import type { HostOutcome } from "../fleet/push.ts";
import { LocalHost } from "../hosts/local.ts";
import { resourceTypes } from "../resources/index.ts";
import { tempDir } from "../resources/testing.ts";
import { reporters } from "./reporters.ts";

/** Converges a kitchen that writes one file and leaves another as it is; returns the events and the report. */
async function run() {
  const host = new LocalHost("box");
  const out = await tempDir();
  const body = `r.file("${out}/same", { content: "x\\n" }); r.file("${out}/new", { content: "hello\\n" });`;
  const root = await makeKitchen({ app: { recipes: { default: recipe(body) } } });
  const catalog = await compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
    types: resourceTypes,
  });
  const stateDir = await tempDir();
  // the first run makes both; the second finds `same` in state after `new` is removed
  await converge(catalog, host, { mode: "apply", stateDir, types: resourceTypes });
  await host.exec(["rm", `${out}/new`]);
  const events: ConvergeEvent[] = [];
  const report = await converge(catalog, host, {
    mode: "apply",
    stateDir,
    types: resourceTypes,
    onEvent: (event) => events.push(event),
  });
  return { out, catalog, events, report };
}

test("reporters: the registry is what apply and push pick from: human and json, each for one host and a fleet", () => {
  assert.deepEqual(Object.keys(reporters), ["human", "json"]);
  for (const entry of Object.values(reporters)) assert.deepEqual(Object.keys(entry), ["run", "fleet"]);
});

test("reporters: human prints the header, changed resources as they happen, and the summary", async () => {
  const { out, catalog, events, report } = await run();
  let text = "";
  const reporter = reporters.human.run({ diffs: true, write: (t) => (text += t) });
  reporter.start({
    command: "galley apply",
    runList: ["app"],
    host: "box",
    resources: catalog.resources.length,
  });
  for (const event of events) reporter.event(event);
  reporter.end(report);
  const lines = text.split("\n");
  assert.match(lines[0]!, /galley apply.* app on box \(2 resources\)$/);
  assert.ok(lines.some((l) => l.includes("changed") && l.includes(`file[${out}/new]`)));
  assert.ok(!text.includes(`file[${out}/same]`), "an unchanged resource is not printed");
  assert.match(text, /ok.*: 1 changed, 1 unchanged, 0 failed, 0 skipped in [\d.]+s on box/);
});

test("reporters: json prints one document, the report, and nothing while it runs", async () => {
  const { events, report } = await run();
  const chunks: string[] = [];
  const reporter = reporters.json.run({ diffs: true, write: (t) => chunks.push(t) });
  reporter.start({ command: "galley apply", runList: ["app"], host: "box", resources: 2 });
  for (const event of events) reporter.event(event);
  assert.deepEqual(chunks, []);
  reporter.end(report);
  assert.equal(chunks.length, 1);
  assert.deepEqual(JSON.parse(chunks[0]!), JSON.parse(JSON.stringify(report)));
});

/** A stream that is not a terminal, as in CI: progress prints a line per phase change. */
function pipe(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough();
  let text = "";
  stream.on("data", (chunk: Buffer) => (text += chunk.toString()));
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text };
}

test("reporters: human for a fleet prints the header, each host's changes when it is done, progress lines and the recap", async () => {
  const { out, report } = await run();
  const progress = pipe();
  let text = "";
  const reporter = reporters.human.fleet({
    diffs: true,
    write: (t) => (text += t),
    progress: progress.stream,
  });
  reporter.start({ command: "galley push", runList: ["app"], hosts: ["web1", "db1"], forks: 2 });
  const outcomes = new Map<string, HostOutcome>([
    ["web1", { status: "ok", report: { ...report, host: "web1" }, durationMs: 1200 }],
    [
      "db1",
      { status: "unreachable", error: { code: "HOST_UNREACHABLE", message: "no route" }, durationMs: 300 },
    ],
  ]);
  for (const [name, outcome] of outcomes) {
    reporter.phase(name, { phase: "connecting" });
    reporter.phase(name, { phase: "done", outcome });
  }
  reporter.end(outcomes);
  const lines = text.split("\n");
  assert.match(lines[0]!, /galley push.* app to 2 hosts \(2 at once\)$/);
  assert.ok(lines.some((l) => l.includes("== web1")));
  assert.ok(lines.some((l) => l.includes("changed") && l.includes(`file[${out}/new]`)));
  assert.match(text, /host\s+status\s+changed\s+unchanged\s+failed\s+skipped\s+time/);
  assert.match(text, /web1\s+ok\s+1\s+1\s+0\s+0\s+1\.2s/);
  assert.match(text, /db1: .*unreachable.*error\[HOST_UNREACHABLE\]: no route/);
  // off a terminal: one line per phase change, on the progress stream only
  assert.match(progress.text(), /^web1\s+connecting$/m);
  assert.match(progress.text(), /^db1\s+.*unreachable/m);
  assert.ok(!text.includes("connecting"));
});

test("reporters: json for a fleet prints one document, every host's report or error, and progress on its own stream", async () => {
  const { report } = await run();
  const progress = pipe();
  const chunks: string[] = [];
  const reporter = reporters.json.fleet({
    diffs: true,
    write: (t) => chunks.push(t),
    progress: progress.stream,
  });
  reporter.start({ command: "galley push", runList: ["app"], hosts: ["web1", "db1"], forks: 2 });
  const outcomes = new Map<string, HostOutcome>([
    ["web1", { status: "ok", report, durationMs: 1200 }],
    ["db1", { status: "skipped", reason: "interrupted", durationMs: 0 }],
  ]);
  for (const [name, outcome] of outcomes) reporter.phase(name, { phase: "done", outcome });
  assert.deepEqual(chunks, []);
  reporter.end(outcomes);
  assert.equal(chunks.length, 1);
  assert.deepEqual(JSON.parse(chunks[0]!), {
    hosts: { web1: JSON.parse(JSON.stringify(report)), db1: { status: "skipped", reason: "interrupted" } },
  });
  assert.match(progress.text(), /^web1\s+done: 1 changed/m);
});
