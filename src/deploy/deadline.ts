import { GalleyError } from "../core/errors.ts";

// A deployment's progress deadline (--deadline): each batch gets a signal that aborts when the
// deployment's own does (Ctrl-C) or when the batch has run too long; its runs stop through it.

/** The progress deadline when --deadline is not given: 10 minutes per batch. */
export const defaultDeadlineMs = 600_000;

/** One batch's deadline: the signal its runs take, and whether it was the deadline that fired. */
export interface BatchDeadline {
  signal: AbortSignal;
  /** the deadline passed (not the deployment's own signal) */
  expired(): boolean;
  /** stops the timer: the batch ended */
  clear(): void;
}

/**
 * Starts the deadline of one batch: after `ms`, its signal aborts with a DEPLOY_FAILED error naming
 * `batch`; it also aborts with `parent` (the deployment's interrupt signal).
 *
 * @example const d = batchDeadline(request.signal, 600_000, "batch 2 of 3 (app2)"); try { … runEvent({ signal: d.signal }) } finally { d.clear() }
 */
export function batchDeadline(parent: AbortSignal | undefined, ms: number, batch: string): BatchDeadline {
  const controller = new AbortController();
  const timer = setTimeout(() => {
    controller.abort(
      new GalleyError("DEPLOY_FAILED", `${batch} did not finish within --deadline ${ms / 1000} s`, {
        hint: "its runs were stopped and the deployment rolls back; give a longer --deadline SECONDS if the batch is only slow",
      }),
    );
  }, ms);
  return {
    signal: parent ? AbortSignal.any([parent, controller.signal]) : controller.signal,
    expired: () => controller.signal.aborted,
    clear: () => clearTimeout(timer),
  };
}

/**
 * `--deadline SECONDS` in milliseconds (default 600 s); anything but a positive number is a usage
 * error naming the flag.
 *
 * @example parseDeadline("90") // 90_000
 */
export function parseDeadline(text: string | undefined): number {
  if (text === undefined) return defaultDeadlineMs;
  const seconds = Number(text);
  if (text.trim() === "" || !Number.isFinite(seconds) || seconds <= 0) {
    throw new GalleyError("USAGE", `--deadline ${text}: a number of seconds greater than 0`, {
      hint: "the longest one batch may take, e.g. --deadline 300 (default 600)",
    });
  }
  return Math.round(seconds * 1000);
}
