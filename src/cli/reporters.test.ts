import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { compileRunList } from "../cookbooks/solo.ts";
import { type ConvergeEvent, converge } from "../core/converge.ts";
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

test("reporters: the registry is what apply picks from: human and json", () => {
  assert.deepEqual(Object.keys(reporters), ["human", "json"]);
});

test("reporters: human prints the header, changed resources as they happen, and the summary", async () => {
  const { out, catalog, events, report } = await run();
  let text = "";
  const reporter = reporters.human({ diffs: true, write: (t) => (text += t) });
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
  const reporter = reporters.json({ diffs: true, write: (t) => chunks.push(t) });
  reporter.start({ command: "galley apply", runList: ["app"], host: "box", resources: 2 });
  for (const event of events) reporter.event(event);
  assert.deepEqual(chunks, []);
  reporter.end(report);
  assert.equal(chunks.length, 1);
  assert.deepEqual(JSON.parse(chunks[0]!), JSON.parse(JSON.stringify(report)));
});
