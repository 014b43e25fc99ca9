import type { ConvergeEvent } from "../core/converge.ts";
import type { Report } from "../core/report.ts";
import { formatResource, formatSummary, paint, write, writeJson } from "./output.ts";

// Reporters: how a run's progress and report are printed, by name. `galley apply|plan` picks
// `json` with --json, `human` otherwise; another output (JUnit, a log line per resource) is a
// function here and a line in the registry.

/** What a run tells its reporter, in order: start, every converge event, end. */
export interface RunReporter {
  /** before the converge: the command, the run list and where it runs */
  start(run: {
    command: string;
    runList: readonly string[];
    bundleId?: string | undefined;
    host: string;
    resources: number;
  }): void;
  /** each converge event as it happens */
  event(event: ConvergeEvent): void;
  /** the report, once the converge is over */
  end(report: Report): void;
}

/** How a reporter is made: whether diffs are shown, and where its text goes (stdout, scrubbed). */
export interface ReporterOptions {
  diffs: boolean;
  write?: (text: string) => void;
}

/** Every reporter, by name. */
export const reporters = {
  /** lines for a person: changed resources as they happen, their diffs, a summary */
  human: (options: ReporterOptions): RunReporter => {
    const out = options.write ?? write;
    return {
      start(run) {
        const from = run.bundleId ? ` from bundle ${run.bundleId.slice(0, 12)}` : "";
        out(
          `${paint("bold", run.command)} ${run.runList.join(" ")}${from} on ${run.host} (${run.resources} resources)\n`,
        );
      },
      event(event) {
        if (event.kind !== "resource" || event.report.status === "unchanged") return;
        out(`${formatResource(event.report, { diffs: options.diffs })}\n`);
      },
      end(report) {
        // resources changed later by a notification are printed again with their final state
        for (const resource of report.resources) {
          if (resource.notified?.length && resource.status !== "unchanged")
            out(`${formatResource(resource, { diffs: options.diffs })}\n`);
        }
        out(`${formatSummary(report)}\n`);
      },
    };
  },
  /** one JSON document, the report, for a program */
  json: (options: ReporterOptions): RunReporter => ({
    start() {},
    event() {},
    end(report) {
      if (options.write) options.write(`${JSON.stringify(report)}\n`);
      else writeJson(report);
    },
  }),
} as const satisfies Record<string, (options: ReporterOptions) => RunReporter>;

/** A reporter's name: a key of the registry. */
export type ReporterName = keyof typeof reporters;
