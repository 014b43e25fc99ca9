import type { HostOutcome, HostPhase } from "../fleet/push.ts";
import { scrubSecrets } from "../core/secrets.ts";
import { paint } from "./output.ts";

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

  /** Prints text above the live lines (a host's changes), then draws them again. */
  print(text: string): void {
    this.#erase();
    process.stdout.write(scrubSecrets(text));
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
