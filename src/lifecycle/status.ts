import { exitCodes } from "../core/errors.ts";
import type { AgentRunRecord, EventRecord, InstanceRecord } from "../store/store.ts";
import type { StackContext } from "./context.ts";
import type { EventSummary, Lifecycle } from "./lifecycle.ts";

// A stack's status and a lifecycle command's outcome as data: `galley stack status --json`, the
// closing JSON of `galley stack up` / `instance start` / `run`, and the server's answers are these.

/** `galley stack status --json`: the instances as the store has them and the last ten events. */
export interface StackStatus {
  stack: string;
  stateVersion: number | null;
  /** false: the stack was never brought up (no `galley stack up`) */
  applied: boolean;
  instances: { name: string; layers: string[]; status: string; address: string | null; updatedAt: string }[];
  events: EventRecord[];
  /** the stack's enrolled agents, each with its last run (drift run or job) as the agent reported it */
  agents: AgentStatus[];
}

/** An agent instance in `galley stack status`: its enrollment and its last reported run. */
export interface AgentStatus {
  instance: string;
  generation: number;
  lastSeenAt: string | null;
  lastRun: {
    seq: number;
    kind: string;
    mode: string;
    status: string;
    changed: number;
    failed: number;
    finishedAt: string;
  } | null;
}

/** The closing JSON of a lifecycle command: instances with their service state, and the events it ran. */
export interface LifecycleOutcome {
  stack: string;
  stateVersion: number | null;
  instances: {
    name: string;
    layers: string[];
    status: string;
    address: string | null;
    inService: boolean;
    weight: number;
  }[];
  events: EventJson[];
}

/** One event as a lifecycle command ran it: its record and each instance's outcome. */
export type EventJson = EventRecord & { outcomes: Record<string, OutcomeJson> };
export interface OutcomeJson {
  status: string;
  note?: string;
  summary?: unknown;
  error?: unknown;
  reason?: string;
}

/** An agent's last run as status shows it (null: none yet). */
export function agentLastRun(run: AgentRunRecord | undefined): AgentStatus["lastRun"] {
  if (run === undefined) return null;
  const { seq, kind, mode, status, changed, failed, finishedAt } = run;
  return { seq, kind, mode, status, changed, failed, finishedAt };
}

/** A stack's status, read from the store only. */
export async function stackStatus(context: StackContext): Promise<StackStatus> {
  const { store, stack } = context;
  return {
    stack: stack.name,
    stateVersion: (await store.latestState(stack.name))?.version ?? null,
    applied: (await store.getStack(stack.name)) !== undefined,
    instances: (await store.listInstances(stack.name)).map((i) => ({
      name: i.name,
      layers: i.layers,
      status: i.status,
      address: i.address ?? null,
      updatedAt: i.updatedAt,
    })),
    events: await store.listEvents(stack.name, { limit: 10 }),
    agents: await Promise.all(
      (await store.listAgents(stack.name)).map(async (agent): Promise<AgentStatus> => {
        const [run] = await store.listAgentRuns(stack.name, agent.instance, { limit: 1 });
        return {
          instance: agent.instance,
          generation: agent.generation,
          lastSeenAt: agent.lastSeenAt ?? null,
          lastRun: agentLastRun(run),
        };
      }),
    ),
  };
}

/** What a lifecycle command did: the stack's instances now and the events `events` ran. */
export async function lifecycleOutcome(
  context: StackContext,
  events: readonly EventSummary[],
): Promise<LifecycleOutcome> {
  const instances = await context.store.listInstances(context.stack.name);
  return {
    stack: context.stack.name,
    stateVersion: (await context.store.latestState(context.stack.name))?.version ?? null,
    instances: instances.map(instanceJson),
    events: events.map(eventJson),
  };
}

function instanceJson(i: InstanceRecord): LifecycleOutcome["instances"][number] {
  return {
    name: i.name,
    layers: i.layers,
    status: i.status,
    address: i.address ?? null,
    inService: i.inService,
    weight: i.weight,
  };
}

/** One event as JSON: its record and each instance's outcome. */
export function eventJson(summary: EventSummary): EventJson {
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

/** A lifecycle command's exit code: 0 all went well, 4 only lost connections, 1 something failed. */
export function lifecycleExitCode(outcome: Pick<LifecycleOutcome, "events">, failedStarts: number): number {
  if (failedStarts > 0) return exitCodes.runFailed;
  const statuses = outcome.events.flatMap((e) => Object.values(e.outcomes).map((o) => o.status));
  if (statuses.includes("failed")) return exitCodes.runFailed;
  if (statuses.includes("connection_lost")) return exitCodes.unreachable;
  return exitCodes.ok;
}

/** A lifecycle's outcome and exit code once it is idle. */
export async function finishedLifecycle(
  lifecycle: Lifecycle,
): Promise<{ outcome: LifecycleOutcome; exitCode: number; failedStarts: Lifecycle["failedStarts"] }> {
  await lifecycle.idle();
  const outcome = await lifecycleOutcome(lifecycle.context, lifecycle.events);
  return {
    outcome,
    exitCode: lifecycleExitCode(outcome, lifecycle.failedStarts.length),
    failedStarts: lifecycle.failedStarts,
  };
}
