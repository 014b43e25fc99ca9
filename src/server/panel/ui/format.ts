// Text for the screen: relative times and status classes. Pure (no DOM).

const units: readonly (readonly [Intl.RelativeTimeFormatUnit, number])[] = [
  ["year", 365 * 24 * 3600],
  ["month", 30 * 24 * 3600],
  ["week", 7 * 24 * 3600],
  ["day", 24 * 3600],
  ["hour", 3600],
  ["minute", 60],
  ["second", 1],
];

const relative = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "5 minutes ago", "in 2 hours", "now": `at` relative to `now`. */
export function relativeTime(at: string | number | Date, now: number = Date.now()): string {
  const time = new Date(at).getTime();
  if (Number.isNaN(time)) return String(at);
  const seconds = Math.round((time - now) / 1000);
  if (Math.abs(seconds) < 10) return "just now";
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size || unit === "second")
      return relative.format(Math.trunc(seconds / size), unit);
  }
  return relative.format(seconds, "second");
}

/** The colour family of a status: good, bad, busy, idle or neutral (shown with its text, never alone). */
export type StatusTone = "good" | "bad" | "busy" | "idle" | "neutral";

const tones: Record<string, StatusTone> = {
  online: "good",
  succeeded: "good",
  successful: "good",
  ok: "good",
  connected: "good",
  setup_failed: "bad",
  failed: "bad",
  connection_lost: "bad",
  refused: "bad",
  aborted: "bad",
  rolled_back: "bad",
  requested: "busy",
  booting: "busy",
  running_setup: "busy",
  running: "busy",
  queued: "busy",
  pending: "busy",
  stopping: "busy",
  shutting_down: "busy",
  stopped: "idle",
  terminated: "idle",
  superseded: "idle",
  skipped: "idle",
};

/** The tone of a status (unknown statuses are neutral). */
export function statusTone(status: string): StatusTone {
  return tones[status] ?? "neutral";
}

/** A status for people: "running_setup" → "running setup". */
export function statusText(status: string): string {
  return status.replaceAll("_", " ");
}
