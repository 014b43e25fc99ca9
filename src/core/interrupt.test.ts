import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { compileRunList } from "../cookbooks/solo.ts";
import { LocalHost } from "../hosts/local.ts";
import { resourceTypes } from "../resources/index.ts";
import { tempDir } from "../resources/testing.ts";
import { converge } from "./converge.ts";
import { Interrupted } from "./interrupt.ts";

// A converge whose AbortSignal fires mid-run: the command running gets the signal, the next
// resources do not run, no notification is delivered and the queued one stays recorded.

test("converge: an interrupt stops the run before the next resource; the report says interrupted", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const body = [
    `r.file("${out}/conf", { content: "v1\\n", notifies: { action: "run", resource: "execute[restart]" } });`,
    // the command aborts the run itself once it runs: the interrupt lands while it runs
    `r.execute("work", { command: "echo started > ${out}/started; sleep 30" });`,
    `r.file("${out}/after", { content: "x\\n" });`,
    `r.execute("restart", { command: "echo restarted > ${out}/restarted", action: "nothing" });`,
  ].join("\n");
  const root = await makeKitchen({ app: { recipes: { default: recipe(body) } } });
  const controller = new AbortController();
  const host = new LocalHost(undefined, { signal: controller.signal, graceMs: 1000 });
  const catalog = await compileRunList({
    runList: ["app"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
    types: resourceTypes,
  });
  const watcher = setInterval(() => {
    fs.access(`${out}/started`).then(
      () => controller.abort(new Interrupted("SIGTERM")),
      () => {},
    );
  }, 50);
  const started = Date.now();
  const report = await converge(catalog, host, {
    mode: "apply",
    stateDir: state,
    types: resourceTypes,
    signal: controller.signal,
  }).finally(() => clearInterval(watcher));
  assert.ok(Date.now() - started < 10_000, "the command was stopped");
  assert.equal(report.status, "interrupted");
  const status = Object.fromEntries(
    report.resources.map((r) => [r.id.replace(out, "$"), [r.status, r.reason]]),
  );
  assert.deepEqual(status["file[$/after]"], ["skipped", "interrupted"]);
  assert.equal(status["execute[work]"]?.[0], "failed");
  assert.deepEqual(
    report.notifications.kept.map((n) => n.target),
    ["execute[restart]"],
  );
  await assert.rejects(fs.access(`${out}/after`));
  await assert.rejects(fs.access(`${out}/restarted`));
  // the notification stays in the ledger for the next run
  const ledger = JSON.parse(await fs.readFile(path.join(state, "notifications.json"), "utf8"));
  assert.deepEqual(
    ledger.entries.map((n: { target: string }) => n.target),
    ["execute[restart]"],
  );
  // a command after the interrupt does not start
  await assert.rejects(host.exec(["true"]), /interrupted by SIGTERM/);
});
