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
 * secrets first. Every method returns a promise, so that a backend reached over the network
 * (PostgreSQL) implements it unchanged; times are ISO 8601 strings in UTC. A failed call rejects
 * with a GalleyError (`STATE_INVALID` for a missing event or instance, an unknown status or kind).
 */
export interface Store {
  /**
   * Runs `fn` in one transaction: all of its writes or none. `fn` gets `tx`, a store whose calls
   * belong to the transaction; use `tx`, not this store, inside `fn`: calls on this store (and other
   * transactions) wait until the transaction ends. A nested `tx.transaction` is a savepoint: its
   * failure, caught by the caller, undoes only its own writes. Calls inside one transaction are
   * awaited one after another.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;

  /** Records `content` as the stack `name` as applied now (replacing the previous one). */
  saveStack(name: string, content: unknown): Promise<StoredStack>;
  getStack(name: string): Promise<StoredStack | undefined>;
  listStacks(): Promise<StoredStack[]>;

  /** Stores `state` as the stack's next state version (1, 2, …) and returns that version. */
  nextStateVersion(stack: string, state: unknown): Promise<number>;
  latestState(stack: string): Promise<StateVersion | undefined>;

  /** Creates (status `stopped`) or updates an instance's layers, provider, address and hostname. */
  upsertInstance(input: InstanceInput): Promise<InstanceRecord>;
  getInstance(stack: string, name: string): Promise<InstanceRecord | undefined>;
  listInstances(stack: string): Promise<InstanceRecord[]>;
  /** Moves an instance to `to` and records the transition; undefined when it already was `to`. */
  setInstanceStatus(
    stack: string,
    name: string,
    to: InstanceStatus,
    reason: string,
  ): Promise<StatusTransition | undefined>;
  /** Every transition of an instance, oldest first. */
  statusHistory(stack: string, name: string): Promise<StatusTransition[]>;

  /** Queues an event; its id increases with every event. */
  createEvent(input: EventInput): Promise<EventRecord>;
  startEvent(id: number): Promise<EventRecord>;
  /** Ends an event, recording the bundle id of the cookbooks it ran when given. */
  finishEvent(
    id: number,
    status: "succeeded" | "failed" | "superseded",
    bundle?: string,
  ): Promise<EventRecord>;
  /** Records (or updates) one instance's outcome of an event. */
  recordInstanceOutcome(outcome: InstanceOutcome): Promise<void>;
  /** A stack's events, newest first (default limit 50). */
  listEvents(stack: string, options?: { limit?: number }): Promise<EventRecord[]>;
  getEvent(id: number): Promise<EventDetail | undefined>;

  /** Closes the store; waits for a transaction still open. Closing twice is harmless. */
  close(): Promise<void>;
}
