import { existsSync } from "node:fs";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import type { LifecycleOptions } from "../lifecycle/lifecycle.ts";
import type { EventJson, LifecycleOutcome } from "../lifecycle/status.ts";
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

/** The options of stack commands that can also talk to a Galley server (galley login). */
export const remoteStackOptions = {
  ...stackOptions,
  server: {
    type: "string",
    description:
      'a Galley server URL: act through its API (default: $GALLEY_SERVER, else the server of galley login; "local": this kitchen)',
  },
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

/** The closing output of a lifecycle command: instances with status and address, the events it ran. */
export function printOutcome(outcome: LifecycleOutcome, json: boolean): void {
  if (json) {
    writeJson(outcome);
    return;
  }
  write(`${paint("bold", `stack ${outcome.stack}`)}\n${instanceTable(outcome.instances)}\n`);
  if (outcome.events.length > 0) write(`\n${outcome.events.map(eventLine).join("\n")}\n`);
}

/** The instances as a table: name, status, address, layers. */
export function instanceTable(
  instances: readonly { name: string; status: string; address: string | null; layers: string[] }[],
): string {
  const rows = instances.map((i) => [i.name, i.status, i.address ?? "-", i.layers.join(",")]);
  const header = ["instance", "status", "address", "layers"];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join("  ")
      .trimEnd();
  return [paint("bold", line(header)), ...rows.map(line)].join("\n");
}

function eventLine(event: EventJson): string {
  const counts = new Map<string, number>();
  for (const r of Object.values(event.outcomes)) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
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
