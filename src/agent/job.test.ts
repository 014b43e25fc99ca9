import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { Interrupted } from "../core/interrupt.ts";
import { tempDir } from "../resources/testing.ts";
import { BundleCache } from "./bundles.ts";
import { runConvergeJob } from "./job.ts";
import { motdBundle, motdJob } from "./testing.ts";

test("a job converges a real bundle on the local host; the second run changes nothing and fetches nothing", async () => {
  const dir = await tempDir();
  const bundle = await motdBundle(path.join(dir, "kitchen"));
  const state = path.join(dir, "agent");
  const hostState = path.join(dir, "host-state");
  const target = path.join(dir, "motd");
  let fetched = 0;
  const options = {
    bundles: new BundleCache(state),
    fetch: async () => {
      fetched += 1;
      return fs.readFile(bundle.file);
    },
    hostStateDir: hostState,
    hostName: "agent-test",
  };
  const phases: string[] = [];
  const job = motdJob(bundle.id, target, "welcome s3cr3t-value", { secrets: ["s3cr3t-value"] });
  const first = await runConvergeJob(job, { ...options, onPhase: (p) => phases.push(p.phase) });
  assert.equal(first.status, "ok", JSON.stringify(first));
  assert.ok("report" in first);
  assert.equal(first.report.summary.changed, 1);
  assert.equal(first.report.bundle, bundle.id);
  assert.equal(await fs.readFile(target, "utf8"), "welcome s3cr3t-value\nhello\n");
  assert.deepEqual([...new Set(phases)], ["connecting", "facts", "compiling", "converging"]);
  // the job's secrets never leave in the report
  assert.doesNotMatch(JSON.stringify(first), /s3cr3t-value/);
  // the run lock lives in the host's state dir
  await fs.stat(path.join(hostState, "run.lock"));

  const second = await runConvergeJob(job, options);
  assert.equal(second.status, "ok");
  assert.ok("report" in second);
  assert.equal(second.report.summary.changed, 0);
  assert.equal(second.report.summary.unchanged, 1);
  assert.equal(fetched, 1);

  const plan = await runConvergeJob(motdJob(bundle.id, target, "changed"), { ...options });
  assert.ok("report" in plan);
  assert.equal(plan.report.summary.changed, 1);
  const planned = await runConvergeJob({ ...motdJob(bundle.id, target, "again"), mode: "plan" }, options);
  assert.ok("report" in planned);
  assert.equal(planned.report.summary.pending, 1);
  assert.equal(await fs.readFile(target, "utf8"), "changed\nhello\n");
});

test("a job whose bundle cannot be had fails with why, and a cancelled job ends interrupted", async () => {
  const dir = await tempDir();
  const options = {
    bundles: new BundleCache(path.join(dir, "agent")),
    fetch: async (): Promise<Uint8Array> => {
      throw new Error("offline");
    },
    hostStateDir: path.join(dir, "host-state"),
  };
  const failed = await runConvergeJob(motdJob("1".repeat(64), path.join(dir, "x"), "x"), options);
  assert.equal(failed.status, "failed");
  assert.ok("error" in failed);
  assert.match(failed.error.message, /offline/);

  const bundle = await motdBundle(path.join(dir, "kitchen"));
  const controller = new AbortController();
  controller.abort(new Interrupted("SIGTERM"));
  const cancelled = await runConvergeJob(motdJob(bundle.id, path.join(dir, "y"), "y"), {
    ...options,
    fetch: async () => fs.readFile(bundle.file),
    signal: controller.signal,
  });
  assert.equal(cancelled.status, "failed");
  assert.ok("report" in cancelled);
  assert.equal(cancelled.report.status, "interrupted");
  await assert.rejects(fs.stat(path.join(dir, "y")), { code: "ENOENT" });
});
