import type { AgentTarget } from "../../fleet/agent-protocol.ts";
import type { Lifecycle } from "../../lifecycle/lifecycle.ts";
import type { StackFile } from "../../stacks/schema.ts";
import type { AuditRecord, Store } from "../../store/store.ts";

// What the automation needs of the server: a narrow view of ServerContext (src/server/context.ts),
// so that its loops are testable with a real store, a fake clock and no HTTPS server.

/** The store calls the automation makes. */
export type AutomationStore = Pick<
  Store,
  | "listStacks"
  | "listInstances"
  | "getInstance"
  | "setInstanceStatus"
  | "appendAudit"
  | "listAudit"
  | "metricsSince"
  | "acquireLease"
  | "releaseLease"
  | "getAgent"
>;

/** The actors of automatic actions in the audit log. */
export type AutomationActor = "system:healer" | "system:scheduler" | "system:autoscaler";

/**
 * When an automatic action was decided, on the automation's clock: `detail.at` (a fake clock in
 * tests, the same as the store's `at` in a server), else the entry's own time.
 */
export function decidedAt(entry: AuditRecord): number {
  const at = (entry.detail as { at?: unknown } | undefined)?.at;
  return Date.parse(typeof at === "string" ? at : entry.at);
}

/** The agent hub's connection events (AgentHub.on). */
export interface AgentEvents {
  on(event: "connected" | "lost", listener: (target: AgentTarget, reason: string) => void): () => void;
}

/** The server settings the automation reads (ServerSettings). */
export interface AutomationSettings {
  keepaliveMs: number;
  missedKeepalives: number;
  schedulerMs: number;
  /** how often agents report metrics (default 60 s): a load threshold needs samples from the start of its wait */
  metricsMs?: number;
}

/** What startAutomation needs: ServerContext satisfies it. */
export interface AutomationContext {
  kitchen: string;
  store: AutomationStore;
  settings: AutomationSettings;
  agents: AgentEvents;
  log(line: string): void;
  /** this server process's name: the holder of its leases */
  id: string;
}

/** Opens a stack's lifecycle for an automatic action; `close` ends it (its store handle, if its own). */
export type LifecycleOpener = (stack: string) => Promise<{ lifecycle: Lifecycle; close(): Promise<void> }>;

/** The current time; tests pass a fake one. */
export type Clock = () => Date;

/** The stack file as the store keeps it (saveStack): the automation decides from it. */
export function storedStack(content: unknown): StackFile | undefined {
  const stack = content as Partial<StackFile> | undefined;
  if (!stack || !Array.isArray(stack.layers) || !Array.isArray(stack.instances)) return undefined;
  return stack as StackFile;
}
