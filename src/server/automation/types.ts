import type { AgentTarget } from "../../fleet/agent-protocol.ts";
import type { Lifecycle } from "../../lifecycle/lifecycle.ts";
import type { StackFile } from "../../stacks/schema.ts";
import type { Store } from "../../store/store.ts";

// What the automation needs of the server: a narrow view of ServerContext (src/server/context.ts),
// so that its loops are testable with a real store, a fake clock and no HTTPS server.

/** One audit entry (the store's AuditInput): every automatic action is one, outcome "auto". */
export interface AutomationAudit {
  actor: "system:healer" | "system:scheduler" | "system:autoscaler";
  action: string;
  stack?: string;
  target?: string;
  outcome: "ok" | "refused" | "auto";
  reason?: string;
  detail?: unknown;
}

/** A stored audit entry, as listAudit returns it. */
export interface AutomationAuditRecord {
  id: number;
  at: string;
  actor: string;
  action: string;
  stack?: string;
  target?: string;
  outcome: "ok" | "refused" | "auto";
  reason?: string;
  detail?: unknown;
}

/** One metrics sample of an agent (the store's MetricSample). */
export interface Sample {
  stack: string;
  instance: string;
  at: string;
  cpu: number;
  memory: number;
  load: number;
}

/** The store calls the automation makes (the Store of issue 13 has them all). */
export type AutomationStore = Pick<
  Store,
  "listStacks" | "listInstances" | "getInstance" | "setInstanceStatus"
> & {
  appendAudit(entry: AutomationAudit): Promise<unknown>;
  listAudit(options?: {
    stack?: string;
    outcome?: "ok" | "refused" | "auto";
    limit?: number;
  }): Promise<AutomationAuditRecord[]>;
  metricsSince(stack: string, since: string): Promise<Sample[]>;
  acquireLease(name: string, holder: string, ttlMs: number, now?: Date): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;
};

/** The agent hub's connection events (AgentHub.on). */
export interface AgentEvents {
  on(event: "connected" | "lost", listener: (target: AgentTarget, reason: string) => void): () => void;
}

/** The server settings the automation reads (ServerSettings). */
export interface AutomationSettings {
  keepaliveMs: number;
  missedKeepalives: number;
  schedulerMs: number;
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
