import type { FeedEntry } from "./feed-cursor.ts";
import type { InstanceSummary, StackOverview, StackSummary } from "./types.ts";

// How feed entries change what the stack pages show. Pure (no DOM): unit-tested with the server's tests.

/** The instance statuses an instance can be started from, and stopped from. */
const busy = new Set(["requested", "booting", "running_setup", "stopping", "shutting_down"]);

/** Whether "Start" makes sense for an instance in `status` (not online, not on its way). */
export function canStart(status: string): boolean {
  return status !== "online" && !busy.has(status);
}

/** Whether "Stop" makes sense for an instance in `status` (not stopped, not on its way). */
export function canStop(status: string): boolean {
  return status !== "stopped" && status !== "terminated" && !busy.has(status);
}

/**
 * A summary with an instance or agent entry applied; undefined when the entry needs the summary
 * read again (another kind, or an instance the summary does not know).
 */
export function applyEntry(summary: StackSummary, entry: FeedEntry): StackSummary | undefined {
  if (entry.stack !== summary.name) return summary;
  if (entry.kind !== "instance" && entry.kind !== "agent") return undefined;
  const name = entry.subject?.startsWith("instance:") ? entry.subject.slice("instance:".length) : undefined;
  const index = summary.instances.findIndex((i) => i.name === name);
  const instance = summary.instances[index];
  if (instance === undefined) return undefined;
  const data = (entry.data ?? {}) as Record<string, unknown>;
  let next: InstanceSummary;
  if (entry.kind === "instance") {
    next = { ...instance };
    if (typeof data.status === "string") next.status = data.status;
    if (typeof data.address === "string") next.address = data.address;
    if (typeof data.inService === "boolean") next.inService = data.inService;
    if (typeof data.weight === "number") next.weight = data.weight;
  } else {
    if (typeof data.connected !== "boolean") return undefined;
    next = { ...instance, agent: { ...instance.agent, connected: data.connected, lastSeenAt: entry.at } };
  }
  const instances = [...summary.instances];
  instances[index] = next;
  return { ...summary, instances };
}

/** The stacks page's card of a stack, from its summary (what GET /v1/overview gives per stack). */
export function overviewOf(summary: StackSummary): StackOverview {
  const counts: Record<string, number> = {};
  for (const instance of summary.instances) counts[instance.status] = (counts[instance.status] ?? 0) + 1;
  return {
    name: summary.name,
    file: summary.file,
    stateVersion: summary.stateVersion,
    layers: summary.layers.map((l) => ({ name: l.name, instances: l.instances })),
    counts,
    apps: summary.apps.map((app) => ({
      name: app.name,
      deployed:
        app.deployed === null
          ? null
          : {
              id: app.deployed.id,
              revision: app.deployed.revision,
              requested: app.deployed.requested,
              status: app.deployed.status,
              finishedAt: app.deployed.finishedAt,
            },
    })),
    events: summary.events.slice(0, 5),
  };
}

/** Stack names the entries are about, in first-seen order. */
export function stacksOf(entries: readonly FeedEntry[]): string[] {
  return [...new Set(entries.map((e) => e.stack))];
}
