import type { HostOutcome, HostPhase } from "../fleet/push.ts";
import { scrubSecrets } from "../core/secrets.ts";
import { formatResource, paint, write } from "./output.ts";

/**
 * A live line per host while a fleet runs. On a terminal the lines are redrawn in place (at most
 * ten times a second); elsewhere (CI, a pipe) each host prints a line when its phase changes.
 */
export class FleetProgress {
  readonly #stream: NodeJS.WriteStream;
  readonly #live: boolean;
  readonly #lines = new Map<string, string>();
  readonly #width: number;
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;
  #lastPhase = new Map<string, string>();

  constructor(names: string[], stream: NodeJS.WriteStream = process.stderr) {
    this.#stream = stream;
    this.#live = Boolean(stream.isTTY) && process.env.TERM !== "dumb";
    this.#width = Math.max(...names.map((n) => n.length), 4);
    for (const name of names) this.#lines.set(name, "waiting");
  }

  /** Records a host's new phase. */
  update(name: string, phase: HostPhase): void {
    this.#lines.set(name, describePhase(phase, this.#stream));
    if (this.#live) {
      this.#timer ??= setTimeout(() => this.#draw(), 100);
      return;
    }
    // off a terminal, progress within a converge would flood the log: print phase changes only
    if (phase.phase === "waiting" || this.#lastPhase.get(name) === phase.phase) return;
    this.#lastPhase.set(name, phase.phase);
    const text =
      phase.phase === "converging" ? `converging ${phase.total} resources` : this.#lines.get(name)!;
    this.#stream.write(scrubSecrets(`${name.padEnd(this.#width)}  ${text}\n`));
  }

  /** Prints text above the live lines (a host's changes; by default on stdout, scrubbed), then draws them again. */
  print(text: string, out: (text: string) => void = write): void {
    this.#erase();
    out(text);
    if (this.#live) this.#draw();
  }

  /** Draws the final state of every line and stops redrawing. */
  finish(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#live) this.#draw();
  }

  #erase(): void {
    if (this.#drawn > 0) this.#stream.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  #draw(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#erase();
    const columns = this.#stream.columns || 100;
    const rows = [...this.#lines].map(([name, text]) =>
      `${name.padEnd(this.#width)}  ${text}`.slice(0, columns + 20),
    );
    this.#stream.write(scrubSecrets(`${rows.join("\n")}\n`));
    this.#drawn = rows.length;
  }
}

function describePhase(phase: HostPhase, stream: NodeJS.WriteStream): string {
  switch (phase.phase) {
    case "waiting":
      return paint("gray", "waiting", stream);
    case "connecting":
      return phase.attempt ? `connecting (attempt ${phase.attempt})` : "connecting";
    case "facts":
      return "gathering facts";
    case "compiling":
      return "compiling";
    case "locked":
      return paint("yellow", `waiting for ${phase.holder}`, stream);
    case "converging": {
      const failed = phase.failed ? paint("red", `, ${phase.failed} failed`, stream) : "";
      return `converging ${phase.done}/${phase.total}, ${phase.changed} changed${failed}`;
    }
    case "done":
      return describeOutcome(phase.outcome, stream);
  }
}

/** One line for how a host ended. */
export function describeOutcome(outcome: HostOutcome, stream: NodeJS.WriteStream = process.stdout): string {
  const time = `${(outcome.durationMs / 1000).toFixed(1)}s`;
  if (outcome.status === "skipped") return paint("gray", `skipped: ${outcome.reason}`, stream);
  if ("error" in outcome) {
    const style = outcome.status === "unreachable" ? "magenta" : "red";
    return `${paint(style, outcome.status, stream)}: error[${outcome.error.code}]: ${outcome.error.message} (${time})`;
  }
  const s = outcome.report.summary;
  const changed = outcome.report.mode === "plan" ? `${s.pending} to change` : `${s.changed} changed`;
  const head =
    outcome.status === "ok"
      ? paint("green", "done", stream)
      : outcome.report.status === "interrupted"
        ? paint("yellow", "interrupted", stream)
        : paint("red", "failed", stream);
  return `${head}: ${changed}, ${s.failed} failed (${time})`;
}

/** A host's report as apply --json prints it; an unreachable or failed-to-start host's status and error. */
export function jsonOutcome(outcome: HostOutcome): unknown {
  if ("report" in outcome) return outcome.report;
  if (outcome.status === "skipped") return { status: "skipped", reason: outcome.reason };
  return { status: outcome.status, error: outcome.error, durationMs: outcome.durationMs };
}

/** What a host changed (or would), printed when it finishes. */
export function hostChanges(name: string, outcome: HostOutcome, diffs: boolean): string {
  if (!("report" in outcome)) return "";
  const touched = outcome.report.resources.filter((r) => r.status !== "unchanged");
  if (touched.length === 0) return "";
  return `${paint("bold", `== ${name}`)}\n${touched.map((r) => formatResource(r, { diffs })).join("\n")}\n`;
}

/** The closing table: one row per host. */
export function recap(outcomes: Map<string, HostOutcome>): string {
  const header = ["host", "status", "changed", "unchanged", "failed", "skipped", "time"];
  const rows = [...outcomes].map(([name, o]) => {
    const s = "report" in o ? o.report.summary : undefined;
    const changed = s
      ? o.status !== "skipped" && "report" in o && o.report.mode === "plan"
        ? s.pending
        : s.changed
      : "-";
    return [
      name,
      "report" in o && o.report.status === "interrupted" ? "interrupted" : o.status,
      String(changed),
      String(s?.unchanged ?? "-"),
      String(s?.failed ?? "-"),
      String(s?.skipped ?? "-"),
      `${(o.durationMs / 1000).toFixed(1)}s`,
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const problems = [...outcomes]
    .filter(([, o]) => !("report" in o) && o.status !== "skipped")
    .map(([name, o]) => `  ${name}: ${describeOutcome(o)}`);
  return [paint("bold", line(header)), ...rows.map(line), ...(problems.length ? ["", ...problems] : [])].join(
    "\n",
  );
}
