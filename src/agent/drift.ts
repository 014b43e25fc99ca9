import type { AgentRunReport, ConvergeJob } from "../fleet/agent-protocol.ts";
import type { HostOutcome } from "../fleet/pipeline.ts";
import type { DriftSettings } from "./periodic.ts";

// What a drift run is and what it reports: the kept periodic job in the server's run mode
// (enforce applies, report plans), and a report whose status says drift when a plan finds changes.

/** The kept job as a drift run runs it. */
export function driftJob(job: ConvergeJob, mode: DriftSettings["runMode"]): ConvergeJob {
  return {
    ...job,
    mode: mode === "enforce" ? "apply" : "plan",
    command: `galley agent run (drift, ${mode})`,
  };
}

/**
 * The report of one drift run, to be numbered and queued: `drift` when a report-mode plan finds
 * changes, `failed` when the run failed (its error kept as the report), else `ok`.
 *
 * @example driftReport(job, "report", outcome, start, end) // { kind: "drift", mode: "report", status: "drift", changed: 2, … }
 */
export function driftReport(
  job: ConvergeJob,
  mode: DriftSettings["runMode"],
  outcome: HostOutcome,
  startedAt: string,
  finishedAt: string,
): Omit<AgentRunReport, "seq"> {
  const report = "report" in outcome ? outcome.report : undefined;
  // a plan counts what it would change as pending
  const changed = report ? report.summary.changed + (mode === "report" ? report.summary.pending : 0) : 0;
  const failed = report ? report.summary.failed : 0;
  const status = outcome.status !== "ok" ? "failed" : mode === "report" && changed > 0 ? "drift" : "ok";
  return {
    kind: "drift",
    mode,
    bundle: job.bundle,
    status,
    changed,
    failed,
    report: report ?? ("error" in outcome ? { error: outcome.error } : undefined),
    startedAt,
    finishedAt,
  };
}

/** One line for the log: how a job or drift run ended. */
export function describeOutcome(outcome: HostOutcome): string {
  if ("report" in outcome) {
    const s = outcome.report.summary;
    return `${outcome.status}, ${s.changed} changed, ${s.failed} failed`;
  }
  if ("error" in outcome) return `${outcome.status}: ${outcome.error.message}`;
  return `${outcome.status}: ${outcome.reason}`;
}
