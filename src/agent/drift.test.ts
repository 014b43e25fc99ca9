import assert from "node:assert/strict";
import { test } from "node:test";
import type { Report } from "../core/report.ts";
import type { HostOutcome } from "../fleet/pipeline.ts";
import { driftJob, driftReport } from "./drift.ts";
import { motdJob } from "./testing.ts";

const job = motdJob("a".repeat(64), "/tmp/x", "x", { periodic: true });
const at = ["2026-12-04T01:00:00.000Z", "2026-12-04T01:00:01.000Z"] as const;

function converged(summary: Partial<Report["summary"]>, status: "ok" | "failed" = "ok"): HostOutcome {
  const report = {
    status,
    mode: "plan",
    host: "web1",
    runList: ["motd"],
    startedAt: at[0],
    durationMs: 1,
    summary: { changed: 0, unchanged: 0, failed: 0, skipped: 0, pending: 0, ignored: 0, ...summary },
    resources: [],
    notifications: { fromPreviousRun: [], kept: [] },
  } satisfies Report;
  return { status, report, durationMs: 1 };
}

test("a drift run applies in enforce mode and plans in report mode", () => {
  assert.equal(driftJob(job, "enforce").mode, "apply");
  assert.equal(driftJob(job, "report").mode, "plan");
  assert.equal(driftJob(job, "report").command, "galley agent run (drift, report)");
});

test("drift: a plan that finds changes; ok: nothing to change or changes enforced; failed: a failed run", () => {
  const table: [DriftMode, HostOutcome, string, number, number][] = [
    ["report", converged({ pending: 2 }), "drift", 2, 0],
    ["report", converged({ unchanged: 3 }), "ok", 0, 0],
    ["enforce", converged({ changed: 1 }), "ok", 1, 0],
    ["enforce", converged({ failed: 1 }, "failed"), "failed", 0, 1],
    [
      "report",
      { status: "failed", error: { code: "BUNDLE_INVALID", message: "gone" }, durationMs: 0 },
      "failed",
      0,
      0,
    ],
  ];
  for (const [mode, outcome, status, changed, failed] of table) {
    const run = driftReport(job, mode, outcome, ...at);
    assert.deepEqual(
      [run.status, run.changed, run.failed],
      [status, changed, failed],
      `${mode} ${JSON.stringify(outcome)}`,
    );
    assert.equal(run.kind, "drift");
    assert.equal(run.bundle, job.bundle);
  }
  const failed = driftReport(job, "report", table[4]![1], ...at);
  assert.deepEqual(failed.report, { error: { code: "BUNDLE_INVALID", message: "gone" } });
});

type DriftMode = "enforce" | "report";
