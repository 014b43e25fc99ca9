import type { Instance } from "../stacks/schema.ts";

const weekdays = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"] as const;

/**
 * Whether an instance should run at `now` by its scaling: 24/7 always; time-based when the UTC
 * hour is in its schedule for that weekday (as OpsWorks' time-based instances); load-based ones
 * start on demand (`galley instance start`), so the answer is "load".
 */
export function shouldRun(instance: Instance, now: Date): "yes" | "no" | "load" {
  const scaling = instance.scaling;
  if (scaling.type === "always") return "yes";
  if (scaling.type === "load") return "load";
  const day = weekdays[now.getUTCDay()]!;
  const hours = (scaling.schedule as Partial<Record<(typeof weekdays)[number], number[]>>)[day] ?? [];
  return hours.includes(now.getUTCHours()) ? "yes" : "no";
}
