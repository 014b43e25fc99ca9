// The control-plane store's interface and records. Nothing here knows SQLite, so that another
// backend (PostgreSQL) can implement Store without touching its callers.

/** Instance statuses, as in OpsWorks. */
export const instanceStatuses = [
  "stopped",
  "requested",
  "booting",
  "running_setup",
  "setup_failed",
  "online",
  "stopping",
  "shutting_down",
  "terminated",
  "connection_lost",
] as const;

/** One instance status. */
export type InstanceStatus = (typeof instanceStatuses)[number];

/** Lifecycle event (command) kinds. */
export const eventKinds = ["setup", "configure", "deploy", "undeploy", "shutdown", "run-recipes"] as const;

/** One lifecycle event kind. */
export type EventKind = (typeof eventKinds)[number];

/** Statuses of a lifecycle event as a whole. */
export const eventStatuses = ["queued", "running", "succeeded", "failed", "superseded"] as const;

/** One event status. */
export type EventStatus = (typeof eventStatuses)[number];

/** Statuses of one instance's part in an event. */
export const outcomeStatuses = ["running", "succeeded", "failed", "superseded", "connection_lost"] as const;

/** One per-instance outcome status. */
export type OutcomeStatus = (typeof outcomeStatuses)[number];

/** A stack as last applied: its parsed stack file. */
export interface StoredStack {
  name: string;
  content: unknown;
  appliedAt: string;
}

/** One version of a stack's state (the JSON every recipe run receives as `r.stack`). */
export interface StateVersion {
  stack: string;
  version: number;
  state: unknown;
  createdAt: string;
}

/** What a caller gives to create or update an instance; its status changes only via setInstanceStatus. */
export interface InstanceInput {
  stack: string;
  name: string;
  layers: string[];
  provider: string;
  address?: string | undefined;
  hostname?: string | undefined;
}

/** An instance as stored. */
export interface InstanceRecord extends InstanceInput {
  status: InstanceStatus;
  updatedAt: string;
}

/** One recorded status change of an instance; `from` is undefined for the first (its creation). */
export interface StatusTransition {
  from: InstanceStatus | undefined;
  to: InstanceStatus;
  at: string;
  reason: string;
}

/** What a caller gives to queue a lifecycle event. */
export interface EventInput {
  stack: string;
  kind: EventKind;
  args?: unknown;
  stateVersion?: number | undefined;
}

/** A lifecycle event (command) as stored. */
export interface EventRecord {
  id: number;
  stack: string;
  kind: EventKind;
  args: unknown;
  stateVersion: number | undefined;
  /** the bundle id of the cookbooks the event ran (its prepared run), once resolved */
  bundle?: string | undefined;
  status: EventStatus;
  createdAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
}

/** One instance's part in an event: its converge report and log. */
export interface InstanceOutcome {
  eventId: number;
  instance: string;
  status: OutcomeStatus;
  /** the stack-state version this instance applied */
  stateVersion?: number | undefined;
  /** the bundle id of the cookbooks this instance ran */
  bundle?: string | undefined;
  report?: unknown;
  log?: string | undefined;
  startedAt: string;
  finishedAt?: string | undefined;
}

/** An event with the outcome on each of its instances. */
export interface EventDetail extends EventRecord {
  outcomes: InstanceOutcome[];
}

/**
 * The persistent control-plane store. Every JSON value and text it keeps is scrubbed of registered
 * secrets first. Methods are synchronous; times are ISO 8601 strings in UTC.
 */
export interface Store {
  /** Runs `fn` in one transaction: all of its writes or none. Nested calls join the outer one. */
  transaction<T>(fn: () => T): T;

  /** Records `content` as the stack `name` as applied now (replacing the previous one). */
  saveStack(name: string, content: unknown): StoredStack;
  getStack(name: string): StoredStack | undefined;
  listStacks(): StoredStack[];

  /** Stores `state` as the stack's next state version (1, 2, …) and returns that version. */
  nextStateVersion(stack: string, state: unknown): number;
  latestState(stack: string): StateVersion | undefined;

  /** Creates (status `stopped`) or updates an instance's layers, provider, address and hostname. */
  upsertInstance(input: InstanceInput): InstanceRecord;
  getInstance(stack: string, name: string): InstanceRecord | undefined;
  listInstances(stack: string): InstanceRecord[];
  /** Moves an instance to `to` and records the transition; undefined when it already was `to`. */
  setInstanceStatus(
    stack: string,
    name: string,
    to: InstanceStatus,
    reason: string,
  ): StatusTransition | undefined;
  /** Every transition of an instance, oldest first. */
  statusHistory(stack: string, name: string): StatusTransition[];

  /** Queues an event; its id increases with every event. */
  createEvent(input: EventInput): EventRecord;
  startEvent(id: number): EventRecord;
  /** Ends an event, recording the bundle id of the cookbooks it ran when given. */
  finishEvent(id: number, status: "succeeded" | "failed" | "superseded", bundle?: string): EventRecord;
  /** Records (or updates) one instance's outcome of an event. */
  recordInstanceOutcome(outcome: InstanceOutcome): void;
  /** A stack's events, newest first (default limit 50). */
  listEvents(stack: string, options?: { limit?: number }): EventRecord[];
  getEvent(id: number): EventDetail | undefined;

  close(): void;
}
