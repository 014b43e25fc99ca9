import { GalleyError } from "./errors.ts";

/** The signals that interrupt a run, and the exit code each gives (128 + its number). */
export const interruptSignals = { SIGINT: 130, SIGTERM: 143 } as const;
export type InterruptSignal = keyof typeof interruptSignals;

/** What an interrupted run's AbortSignal carries: an INTERRUPTED error naming the signal. */
export class Interrupted extends GalleyError {
  readonly signal: InterruptSignal;
  /** the process's exit code: 130 for SIGINT, 143 for SIGTERM */
  readonly exitCode: number;

  constructor(signal: InterruptSignal) {
    super("INTERRUPTED", `interrupted by ${signal}`, {
      hint: "the command that was running was stopped; pending notifications are kept for the next run",
    });
    this.signal = signal;
    this.exitCode = interruptSignals[signal];
  }
}

/** The signal to forward to running commands for an abort reason: its own, else SIGTERM. */
export function signalOf(reason: unknown): InterruptSignal {
  return reason instanceof Interrupted ? reason.signal : "SIGTERM";
}

/** How long a command may take to end after the signal is forwarded, before it is killed. */
export const interruptGraceMs = 5000;
