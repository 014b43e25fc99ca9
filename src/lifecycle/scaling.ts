import type { Instance } from "../stacks/schema.ts";

const weekdays = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] as const;

/** A weekday of a time-based schedule. */
export type Weekday = (typeof weekdays)[number];

// one formatter per zone: building them costs more than formatting
const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * The weekday and hour `now` has on the clocks of `timeZone` (an IANA name), daylight saving
 * included: 2026-03-30T07:30Z is monday 9 in Europe/Paris (summer time), a week before it was 8.
 */
export function zonedHour(now: Date, timeZone: string): { day: Weekday; hour: number } {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone,
      weekday: "long",
      hour: "numeric",
      hourCycle: "h23",
    });
    formatters.set(timeZone, format);
  }
  const parts = format.formatToParts(now);
  const day = parts.find((p) => p.type === "weekday")!.value.toLowerCase() as Weekday;
  const hour = Number(parts.find((p) => p.type === "hour")!.value) % 24;
  return { day, hour };
}

/**
 * Whether an instance should run at `now` by its scaling: 24/7 always; time-based when the hour
 * in its time zone (default UTC) is in its schedule for that weekday (as OpsWorks' time-based
 * instances); load-based ones are started and stopped on load (the server's autoscaler, or
 * `galley instance start`), so the answer is "load".
 */
export function shouldRun(instance: Instance, now: Date): "yes" | "no" | "load" {
  const scaling = instance.scaling;
  if (scaling.type === "always") return "yes";
  if (scaling.type === "load") return "load";
  const { day, hour } = zonedHour(now, scaling.timezone ?? "UTC");
  const hours = (scaling.schedule as Partial<Record<Weekday, number[]>>)[day] ?? [];
  return hours.includes(hour) ? "yes" : "no";
}
