import { existsSync } from "node:fs";
import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { EventSummary, Lifecycle, LifecycleOptions } from "../lifecycle/lifecycle.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { InstanceResult } from "../lifecycle/events.ts";
import { runLockOptions, waitMs } from "./options.ts";
import { paint, write, writeJson } from "./output.ts";

/** Options every stack command shares. */
export const stackOptions = {
  stack: {
    type: "string",
    short: "s",
    description: "the stack: a stack file, or NAME for stacks/NAME.yaml in this folder",
  },
  forks: { type: "string", description: "instances converged at once (default: all)" },
  "key-file": {
    type: "string",
    description: "the key of the stack's encrypted secrets: files (default: $GALLEY_SECRET_KEY_FILE)",
  },
  ...runLockOptions,
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

/** The stack file a command names: a path, or NAME → stacks/NAME.yaml. */
export function stackFile(name: string | undefined, command: string): string {
  if (!name) {
    throw new GalleyError("USAGE", `galley ${command}: which stack?`, {
      hint: `name it: galley ${command} --stack stacks/production.yaml (or --stack production)`,
    });
  }
  if (/\.ya?ml$/.test(name) || name.includes("/")) return path.resolve(name);
  const file = path.resolve("stacks", `${name}.yaml`);
  if (!existsSync(file)) {
    throw new GalleyError("STACK_INVALID", `no stack file ${file}`, {
      hint: "name a stack file (stacks/NAME.yaml), or run the command in the kitchen that holds stacks/",
    });
  }
  return file;
}

/**
 * Progress on stderr: status changes, an instance waiting for another run on its host, and each
 * instance's part in each event as it ends. `wait` is --wait; `signal` interrupts the events.
 */
export function progressOptions(
  json: boolean,
  forks: string | undefined,
  run: { wait?: string | undefined; signal?: AbortSignal } = {},
): LifecycleOptions {
  const out = (line: string) => process.stderr.write(`${line}\n`);
  const options: LifecycleOptions = {
    log: (line) => out(paint("dim", line, process.stderr)),
    onStatus: (instance, status, reason) =>
      out(`${instance.padEnd(12)} ${paint("bold", status, process.stderr)}  ${reason}`),
    onEvent: (summary) => {
      const { event } = summary;
      if (event.status === "superseded" && summary.results.size === 0) {
        out(
          `${"".padEnd(12)} ${event.kind} #${event.id} (state ${event.stateVersion}) superseded by a newer stack state`,
        );
        return;
      }
      for (const [name, result] of summary.results)
        out(
          `${name.padEnd(12)} ${event.kind} #${event.id} (state ${event.stateVersion}): ${describe(result)}`,
        );
    },
  };
  options.waitMs = waitMs(run);
  if (run.signal) options.signal = run.signal;
  options.onPhase = (kind, instance, phase) => {
    if (phase.phase === "locked") out(`${instance.padEnd(12)} ${kind}: waiting for ${phase.holder}`);
  };
  void json;
  if (forks !== undefined) {
    const n = Number(forks);
    if (!Number.isInteger(n) || n < 1)
      throw new GalleyError("ARGS_INVALID", `--forks ${forks}: expected a whole number from 1 up`, {
        hint: "for example --forks 5",
      });
    options.forks = n;
  }
  return options;
}

/** The closing output: instances with status and address, the events this command ran. Returns the exit code. */
export async function finish(context: StackContext, lifecycle: Lifecycle, json: boolean): Promise<number> {
  const instances = await context.store.listInstances(context.stack.name);
  const events = lifecycle.events;
  if (json) {
    writeJson({
      stack: context.stack.name,
      stateVersion: (await context.store.latestState(context.stack.name))?.version ?? null,
      instances: instances.map((i) => ({
        name: i.name,
        layers: i.layers,
        status: i.status,
        address: i.address ?? null,
        inService: i.inService,
        weight: i.weight,
      })),
      events: events.map(eventJson),
    });
  } else {
    write(`${paint("bold", `stack ${context.stack.name}`)}\n${await instanceTable(context)}\n`);
    if (events.length > 0) write(`\n${events.map(eventLine).join("\n")}\n`);
  }
  if (lifecycle.failedStarts.length > 0) return exitCodes.runFailed;
  return exitCode(events);
}

/** The instances as a table: name, status, address, layers. */
export async function instanceTable(context: StackContext): Promise<string> {
  const rows = (await context.store.listInstances(context.stack.name)).map((i) => [
    i.name,
    i.status,
    i.address ?? "-",
    i.layers.join(","),
  ]);
  const header = ["instance", "status", "address", "layers"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join("  ")
      .trimEnd();
  return [paint("bold", line(header)), ...rows.map(line)].join("\n");
}

/** One event as JSON: its record and each instance's outcome. */
export function eventJson(summary: EventSummary): unknown {
  return {
    ...summary.event,
    outcomes: Object.fromEntries(
      [...summary.results].map(([name, r]) => [
        name,
        {
          status: r.status,
          ...(r.note ? { note: r.note } : {}),
          ...(r.outcome && "report" in r.outcome ? { summary: r.outcome.report.summary } : {}),
          ...(r.outcome && "error" in r.outcome ? { error: r.outcome.error } : {}),
          ...(r.outcome?.status === "skipped" ? { reason: r.outcome.reason } : {}),
        },
      ]),
    ),
  };
}

function eventLine(summary: EventSummary): string {
  const { event } = summary;
  const counts = new Map<string, number>();
  for (const r of summary.results.values()) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const detail = [...counts].map(([status, n]) => `${n} ${status}`).join(", ") || "no instance";
  return `${event.kind.padEnd(11)} #${String(event.id).padEnd(4)} state ${String(event.stateVersion ?? "-").padEnd(4)} ${event.status.padEnd(10)} ${detail}`;
}

function describe(result: InstanceResult): string {
  const o = result.outcome;
  if (!o) return `${result.status}${result.note ? ` (${result.note})` : ""}`;
  if ("report" in o) {
    const s = o.report.summary;
    return `${result.status}, ${s.changed} changed, ${s.unchanged} unchanged, ${s.failed} failed (${(o.durationMs / 1000).toFixed(1)}s)`;
  }
  if (o.status === "skipped") return `${result.status} (${o.reason})`;
  return `${result.status}: ${o.error.code}: ${o.error.message.split("\n")[0]}`;
}

// 0: all went well; 4: the only trouble was lost connections; 1: something failed
function exitCode(events: readonly EventSummary[]): number {
  const statuses = events.flatMap((e) => [...e.results.values()].map((r) => r.status));
  if (statuses.includes("failed")) return exitCodes.runFailed;
  if (statuses.includes("connection_lost")) return exitCodes.unreachable;
  return exitCodes.ok;
}
