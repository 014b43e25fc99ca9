import type { ConvergeEvent } from "../core/converge.ts";
import type { Report } from "../core/report.ts";
import type { HostOutcome, HostPhase } from "../fleet/push.ts";
import { FleetProgress, hostChanges, jsonOutcome, recap } from "./fleet-progress.ts";
import { formatResource, formatSummary, paint, write, writeJson } from "./output.ts";

// Reporters: how a run's progress and report are printed, by name. `galley apply|plan` (one host:
// `run`) and `galley push` (a fleet: `fleet`) pick `json` with --json, `human` otherwise; another
// output (JUnit, a log line per resource) is an entry here and a line in the registry.

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

/** What a fleet run (`galley push`) tells its reporter, in order: start, each host's phases, end. */
export interface FleetReporter {
  /** before the run: the command, the run list, the hosts and how many run at once */
  start(run: { command: string; runList: readonly string[]; hosts: readonly string[]; forks: number }): void;
  /** a host's new phase, as the fleet runner reports it (`done` carries its outcome) */
  phase(host: string, phase: HostPhase): void;
  /** every host's outcome, in the run's order, once the run is over */
  end(outcomes: ReadonlyMap<string, HostOutcome>): void;
}

/** How a reporter is made: whether diffs are shown, and where its text goes (stdout, scrubbed). */
export interface ReporterOptions {
  diffs: boolean;
  write?: (text: string) => void;
  /** where a fleet's live progress goes (default stderr, so that --json stays one object on stdout) */
  progress?: NodeJS.WriteStream;
}

/** One reporter: how it prints a run on one host, and a fleet run. */
export interface ReporterEntry {
  run(options: ReporterOptions): RunReporter;
  fleet(options: ReporterOptions): FleetReporter;
}

/** Every reporter, by name. */
export const reporters = {
  /** lines for a person: changed resources as they happen, their diffs, a summary; a line per host in a fleet */
  human: {
    run: (options: ReporterOptions): RunReporter => humanRun(options),
    fleet: (options: ReporterOptions): FleetReporter => {
      const out = options.write ?? write;
      let progress: FleetProgress | undefined;
      return {
        start(run) {
          progress = new FleetProgress([...run.hosts], options.progress);
          const hosts = `${run.hosts.length} host${run.hosts.length === 1 ? "" : "s"}`;
          out(`${paint("bold", run.command)} ${run.runList.join(" ")} to ${hosts} (${run.forks} at once)\n`);
        },
        phase(host, phase) {
          progress?.update(host, phase);
          if (phase.phase === "done") progress?.print(hostChanges(host, phase.outcome, options.diffs), out);
        },
        end(outcomes) {
          progress?.finish();
          out(`\n${recap(new Map(outcomes))}\n`);
        },
      };
    },
  },
  /** one JSON document, the report (a fleet's: every host's), for a program; a fleet's progress on stderr */
  json: {
    run: (options: ReporterOptions): RunReporter => ({
      start() {},
      event() {},
      end(report) {
        if (options.write) options.write(`${JSON.stringify(report)}\n`);
        else writeJson(report);
      },
    }),
    fleet: (options: ReporterOptions): FleetReporter => {
      let progress: FleetProgress | undefined;
      return {
        start(run) {
          progress = new FleetProgress([...run.hosts], options.progress);
        },
        phase(host, phase) {
          progress?.update(host, phase);
        },
        end(outcomes) {
          progress?.finish();
          const hosts = {
            hosts: Object.fromEntries([...outcomes].map(([name, o]) => [name, jsonOutcome(o)])),
          };
          if (options.write) options.write(`${JSON.stringify(hosts)}\n`);
          else writeJson(hosts);
        },
      };
    },
  },
} as const satisfies Record<string, ReporterEntry>;

/** A reporter's name: a key of the registry. */
export type ReporterName = keyof typeof reporters;

// lines for a person on one host: changed resources as they happen, their diffs, a summary
function humanRun(options: ReporterOptions): RunReporter {
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
}
