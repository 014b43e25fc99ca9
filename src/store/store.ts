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
  /** in the load balancer's service (true unless a deployment drained it) */
  inService: boolean;
  /** its load-balancer weight, 0..256 (100 unless an A/B deployment split the traffic) */
  weight: number;
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

/** Statuses of a deployment as a whole. */
export const deploymentStatuses = [
  "pending",
  "running",
  "succeeded",
  "failed",
  "rolled_back",
  "interrupted",
] as const;

/** One deployment status. */
export type DeploymentStatus = (typeof deploymentStatuses)[number];

/** The states of a deployment's migration (its lock, kept in the store). */
export const migrationStates = ["none", "pending", "running", "done", "failed"] as const;

/** One migration state. */
export type MigrationState = (typeof migrationStates)[number];

/** What a caller gives to record a deployment: everything a rollback needs to repeat it. */
export interface DeploymentInput {
  stack: string;
  app: string;
  /** the resolved commit (git) or archive sha256: never a branch name */
  revision: string;
  /** what was asked: a branch, tag or commit ("main") */
  requested: string;
  bundle?: string | undefined;
  /** this deployment's custom JSON (--attrs), at its own precedence level */
  attributes: Record<string, unknown>;
  strategy: string;
  /** the strategy's parameters: batch, maxUnavailable, maxFail, … */
  params: Record<string, unknown>;
  /** who asked: user@controller */
  user: string;
  /** the deployment whose recorded parameters this one repeats (a rollback) */
  rollbackOf?: number | undefined;
  /** "none" when the app has no migrate step, else "pending" */
  migration: "none" | "pending";
}

// Omit: the record widens `migration` from what a caller may ask ("none", "pending") to every state
/** A deployment as stored. */
export interface DeploymentRecord extends Omit<DeploymentInput, "migration"> {
  id: number;
  status: DeploymentStatus;
  migration: MigrationState;
  /** which instance ran (runs) the migration, once claimed */
  migrationInstance?: string | undefined;
  note?: string | undefined;
  createdAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
}

/** Statuses of one step of a deployment on one instance. */
export const stepStatuses = ["running", "succeeded", "failed", "skipped"] as const;

/** One phase of a deployment on one instance, in one batch. */
export interface DeploymentStep {
  deploymentId: number;
  instance: string;
  /** the batch (0-based) this step belongs to */
  batch: number;
  /** "drain" | "prepare" | "migrate" | "switch" | "health" | "undrain" | "rollback" */
  phase: string;
  status: (typeof stepStatuses)[number];
  /** the release (deployment id as text) the instance runs after this step, when it switched */
  release?: string | undefined;
  log?: string | undefined;
  startedAt: string;
  finishedAt?: string | undefined;
}

/** A deployment with its steps, in the order they were first recorded. */
export interface DeploymentDetail extends DeploymentRecord {
  steps: DeploymentStep[];
}

/** Roles of an admin token on a stack; each includes the ones before it. */
export const roles = ["viewer", "deployer", "admin"] as const;

/** One role. */
export type Role = (typeof roles)[number];

/** A role on one stack, or on every stack ("*"). */
export interface Grant {
  /** a stack name, or "*" for every stack */
  stack: string;
  role: Role;
}

/** What a caller gives to create an admin token. */
export interface TokenInput {
  name: string;
  grants: Grant[];
  expiresAt?: string | undefined;
  /** sha256 hex of the token's secret; the secret itself is never stored */
  hash: string;
}

/** An admin token as stored (without its hash). */
export interface TokenRecord {
  id: string;
  name: string;
  grants: Grant[];
  expiresAt?: string;
  createdAt: string;
  lastUsedAt?: string;
  revokedAt?: string;
}

/** What a caller gives to create a one-time agent enrollment token. */
export interface EnrollmentInput {
  stack: string;
  instance: string;
  /** sha256 hex of the enrollment secret */
  hash: string;
  expiresAt: string;
}

/** An enrolled agent: the key it authenticates with. */
export interface AgentRecord {
  stack: string;
  instance: string;
  /** PEM (spki) */
  publicKey: string;
  /** 1, 2, … per (re-)enrollment of the instance */
  generation: number;
  enrolledAt: string;
  lastSeenAt?: string;
}

/** Kinds of an agent's own run. */
export const agentRunKinds = ["drift", "job"] as const;
/** Modes of an agent's run. */
export const agentRunModes = ["enforce", "report"] as const;
/** Statuses of an agent's run. */
export const agentRunStatuses = ["ok", "failed", "drift"] as const;

/**
 * One report of an agent's run, as the server received it: AgentRunReport (fleet/agent-protocol.ts,
 * which the store may not import: the same shape) and whose it is.
 */
export interface AgentRunInput {
  stack: string;
  instance: string;
  /** the agent's enrollment generation: seq restarts with a new enrollment */
  generation: number;
  /** the agent's counter, increasing, never reused for one enrollment */
  seq: number;
  kind: (typeof agentRunKinds)[number];
  mode: (typeof agentRunModes)[number];
  bundle?: string | undefined;
  status: (typeof agentRunStatuses)[number];
  changed: number;
  failed: number;
  report?: unknown;
  startedAt: string;
  finishedAt: string;
}

/** An agent run report as stored. */
export interface AgentRunRecord extends AgentRunInput {
  receivedAt: string;
}

/** One metrics sample of an agent's host. */
export interface MetricSample {
  stack: string;
  instance: string;
  at: string;
  /** 0..100 */
  cpu: number;
  /** 0..100 */
  memory: number;
  /** 1-minute load average */
  load: number;
}

/** Outcomes an audit entry records. */
export const auditOutcomes = ["ok", "refused", "auto"] as const;

/** What a caller gives to append to the audit log. */
export interface AuditInput {
  /** "token:<name>", "agent:<stack>/<instance>", "system:healer" … */
  actor: string;
  /** "deploy", "instance.start", "auth" … */
  action: string;
  stack?: string | undefined;
  target?: string | undefined;
  outcome: (typeof auditOutcomes)[number];
  reason?: string | undefined;
  detail?: unknown;
}

/** An audit entry as stored; ids increase. */
export interface AuditRecord extends AuditInput {
  id: number;
  at: string;
}

/**
 * Kinds of entries in the feed: the ordered, durable log of what happens in stacks, which the web
 * panel and `--follow` read live (and resume from the last id they saw).
 * Written by the store itself when its state changes (instance, state, event, outcome, deployment,
 * step, run, stack) and by runners for their progress (phase, log) and by the server (agent).
 */
export const feedKinds = [
  "stack",
  "instance",
  "state",
  "event",
  "outcome",
  "deployment",
  "step",
  "agent",
  "run",
  "phase",
  "log",
] as const;

/** One kind of feed entry. */
export type FeedKind = (typeof feedKinds)[number];

/**
 * What a caller gives to append to the feed. `subject` names what the entry is about:
 * `instance:<name>`, `event:<id>`, `deployment:<id>` (or none: the stack as a whole).
 * Data by kind (never a secret; the store scrubs registered secrets like every JSON value):
 * - stack: {} (the stack file was applied or saved)
 * - instance (instance:NAME): { status?, reason?, inService?, weight?, address? }
 * - state: { version }
 * - event (event:ID): { id, kind, status, stateVersion?, bundle? }
 * - outcome (event:ID): { instance, status, startedAt, finishedAt? } (no report, no log)
 * - deployment (deployment:ID): { id, app, status, strategy, revision, requested, rollbackOf? }
 * - step (deployment:ID): { instance, batch, phase, status, release?, startedAt, finishedAt? } (no log)
 * - agent (instance:NAME): { connected: boolean, reason? }
 * - run (instance:NAME): { seq, generation, kind, mode, status, changed, failed, finishedAt }
 * - phase (event:ID or deployment:ID): { instance, phase, done?, total?, changed?, failed?, status? }
 * - log (event:ID or deployment:ID): { line, instance? }
 */
export interface FeedInput {
  stack: string;
  kind: FeedKind;
  subject?: string | undefined;
  data: unknown;
  /** default: now */
  at?: string | undefined;
}

/** A feed entry as stored; ids increase across the whole store (one sequence for every stack). */
export interface FeedEntry {
  id: number;
  at: string;
  stack: string;
  kind: FeedKind;
  subject: string | undefined;
  data: unknown;
}

/** Which feed entries to read. Every field narrows; none: every entry. */
export interface FeedQuery {
  /** only these stacks (an empty list: none) */
  stacks?: readonly string[] | undefined;
  subject?: string | undefined;
  kinds?: readonly FeedKind[] | undefined;
  /** ids greater than this */
  after?: number | undefined;
  /** ids less than this */
  before?: number | undefined;
  /** skip this many matching entries (in `order`): a log viewer's page by position */
  offset?: number | undefined;
  /** default 500, at most 5000 */
  limit?: number | undefined;
  /** default "asc" (oldest first) */
  order?: "asc" | "desc" | undefined;
}

/** A user account of the server (people who log in to the web panel with a password). */
export interface UserInput {
  /** 1–64 of [A-Za-z0-9_.@-] */
  name: string;
  /** `scrypt$N$r$p$salt$hash` (src/server/users.ts makes and checks it); never the password */
  passwordHash: string;
  grants: Grant[];
}

/** A user as stored. */
export interface UserRecord extends UserInput {
  createdAt: string;
  updatedAt: string;
  lastLoginAt?: string | undefined;
}

/** Who a web session is: a user account, or an admin token pasted at login. */
export type SessionActor = { kind: "user"; name: string } | { kind: "token"; tokenId: string };

/** What a caller gives to open a web session. */
export interface SessionInput {
  /** sha256 hex of the session cookie's secret; the secret itself is never stored */
  hash: string;
  actor: SessionActor;
  /** the CSRF token pages send back in `X-Galley-CSRF` on every change (random, not secret from its page) */
  csrf: string;
  expiresAt: string;
}

/** A web session as stored. */
export interface SessionRecord extends SessionInput {
  createdAt: string;
  lastSeenAt: string;
}

/** One instance's outcome of an event, with the event it belongs to (an instance's reports). */
export interface InstanceOutcomeEntry extends InstanceOutcome {
  event: EventRecord;
}

/**
 * The persistent control-plane store. Every JSON value and text it keeps is scrubbed of registered
 * secrets first. Every method returns a promise, so that a backend reached over the network
 * (PostgreSQL) implements it unchanged; times are ISO 8601 strings in UTC. A failed call rejects
 * with a GalleyError (`STATE_INVALID` for a missing event, deployment or instance, an unknown status or kind).
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
  /** Puts an instance in or out of the load balancer's service (a deployment drains it); default true. */
  setInstanceService(stack: string, name: string, inService: boolean): Promise<void>;
  /** Sets an instance's load-balancer weight, 0..256 (an A/B deployment); default 100. */
  setInstanceWeight(stack: string, name: string, weight: number): Promise<void>;

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

  /** Records a deployment, status `pending`; its id increases with every deployment. */
  createDeployment(input: DeploymentInput): Promise<DeploymentRecord>;
  /** Moves a deployment to `running` (a pending one, or an interrupted one resumed); its first start time is kept. */
  startDeployment(id: number): Promise<DeploymentRecord>;
  /** Ends a deployment, with a note (why it failed, what was rolled back) when given. */
  finishDeployment(
    id: number,
    status: "succeeded" | "failed" | "rolled_back" | "interrupted",
    note?: string,
  ): Promise<DeploymentRecord>;
  /** Records the bundle id of the cookbooks the deployment runs, once resolved. */
  setDeploymentBundle(id: number, bundle: string): Promise<DeploymentRecord>;
  /** A deployment with its steps in the order they were first recorded. */
  getDeployment(id: number): Promise<DeploymentDetail | undefined>;
  /** A stack's deployments (of one app when given), newest first (default limit 50). */
  listDeployments(stack: string, options?: { app?: string; limit?: number }): Promise<DeploymentRecord[]>;
  /**
   * The newest succeeded deployment of an app that is not an A/B one (strategy "ab" runs on a
   * subset only): what the stack pins (new instances get its revision).
   */
  deployedRevision(stack: string, app: string): Promise<DeploymentRecord | undefined>;
  /** Records a step: a new row, or the update of the row with the same (deploymentId, instance, batch, phase). */
  recordDeploymentStep(step: DeploymentStep): Promise<void>;
  /**
   * The migration lock, in the store so it survives kill -9 of the deploying process: "claimed" moves
   * pending → running for `instance` (atomic: two callers, one claim); "done" when it already ran;
   * "running" when a claim exists and is not finished (a deploying process died mid-migration, or
   * another holds it); "none" when the deployment has no migration. A failed migration is refused
   * (STATE_INVALID): resetMigration re-arms it.
   */
  claimMigration(id: number, instance: string): Promise<"claimed" | "done" | "running" | "none">;
  /** Ends a claimed (running) migration; finishing it again with the same status is harmless. */
  finishMigration(id: number, status: "done" | "failed"): Promise<DeploymentRecord>;
  /** Re-arms a claim left "running" by a dead process, or a failed one (resume decides, after checking the host). */
  resetMigration(id: number, to: "pending" | "done"): Promise<DeploymentRecord>;

  /** Records an admin token (by its secret's hash); its id is new. */
  createToken(input: TokenInput): Promise<TokenRecord>;
  /** The token whose secret hashes to `hash`, expired and revoked ones too: the caller refuses those. */
  tokenByHash(hash: string): Promise<TokenRecord | undefined>;
  /** Records a token's last use. */
  touchToken(id: string, at: string): Promise<void>;
  /** Every token, oldest first. */
  listTokens(): Promise<TokenRecord[]>;
  /** Revokes a token (revoking again keeps the first time). */
  revokeToken(id: string): Promise<TokenRecord>;
  /** Records a one-time agent enrollment token; replaces an unused one of the same instance. */
  createEnrollment(input: EnrollmentInput): Promise<void>;
  /** Atomic: the first caller with an unexpired, unused hash gets its instance; later ones undefined. */
  consumeEnrollment(hash: string, now: string): Promise<{ stack: string; instance: string } | undefined>;
  /** Records an agent's key: a re-enrollment replaces it and bumps the generation. */
  registerAgent(input: { stack: string; instance: string; publicKey: string }): Promise<AgentRecord>;
  getAgent(stack: string, instance: string): Promise<AgentRecord | undefined>;
  /** The enrolled agents (of one stack when given), by stack and instance. */
  listAgents(stack?: string): Promise<AgentRecord[]>;
  /** Records when an agent was last heard from. */
  agentSeen(stack: string, instance: string, at: string): Promise<void>;
  /** Idempotent by (stack, instance, generation, seq): "duplicate" when already stored. */
  recordAgentRun(run: AgentRunInput): Promise<"recorded" | "duplicate">;
  /** An instance's agent runs, newest first (default limit 50). */
  listAgentRuns(stack: string, instance: string, options?: { limit?: number }): Promise<AgentRunRecord[]>;
  recordMetrics(sample: MetricSample): Promise<void>;
  /** A stack's samples taken at or after `since`, oldest first. */
  metricsSince(stack: string, since: string): Promise<MetricSample[]>;
  appendAudit(entry: AuditInput): Promise<AuditRecord>;
  /** The audit log, newest first (default limit 100). */
  listAudit(options?: {
    stack?: string;
    outcome?: AuditInput["outcome"];
    limit?: number;
  }): Promise<AuditRecord[]>;
  /** True when `holder` holds the lease `name` after the call (taken when free or expired; renewed when its own). */
  acquireLease(name: string, holder: string, ttlMs: number, now?: Date): Promise<boolean>;
  /** Gives up a lease `holder` holds; another's is left. */
  releaseLease(name: string, holder: string): Promise<void>;

  /** Appends entries in order (one transaction); returns them with their ids. Listeners of watchFeed hear of them once committed. */
  appendFeed(entries: readonly FeedInput[]): Promise<FeedEntry[]>;
  /** Feed entries matching `query`, in its order. */
  readFeed(query: FeedQuery): Promise<FeedEntry[]>;
  /** How many entries match `query` (its after/before/kinds/subject/stacks; offset and limit ignored). */
  countFeed(query: FeedQuery): Promise<number>;
  /** The newest entry's id (0: none yet). */
  lastFeedId(): Promise<number>;
  /**
   * Calls `listener` with the newest id after entries are committed by this process (through any
   * store object opened on the same database in this process). Other processes' entries are seen by
   * polling `lastFeedId`. Returns the unsubscribe function.
   */
  watchFeed(listener: (lastId: number) => void): () => void;
  /** Drops entries older than `before` (ISO time), keeping at least the newest `keep`; returns how many went. */
  pruneFeed(before: string, keep: number): Promise<number>;

  /** Creates a user; STATE_INVALID when the name is taken. */
  createUser(input: UserInput): Promise<UserRecord>;
  getUser(name: string): Promise<UserRecord | undefined>;
  /** Every user, by name. */
  listUsers(): Promise<UserRecord[]>;
  /** Changes a user's password hash and/or grants; STATE_INVALID for an unknown user. */
  updateUser(
    name: string,
    change: { passwordHash?: string; grants?: Grant[]; lastLoginAt?: string },
  ): Promise<UserRecord>;
  /** Deletes a user and every session of theirs; false when there was none. */
  deleteUser(name: string): Promise<boolean>;
  createSession(input: SessionInput): Promise<SessionRecord>;
  /** The session with this hash, unless it expired before `now`. */
  sessionByHash(hash: string, now: string): Promise<SessionRecord | undefined>;
  /** Records a session's use and moves its expiry (sliding sessions). */
  touchSession(hash: string, at: string, expiresAt: string): Promise<void>;
  deleteSession(hash: string): Promise<void>;
  /** Deletes the sessions of a token (revoked) or a user; returns how many. */
  deleteSessionsOf(actor: SessionActor): Promise<number>;
  /** Deletes sessions expired before `now`; returns how many. */
  deleteExpiredSessions(now: string): Promise<number>;

  /** An instance's outcomes across the stack's events, newest first (default limit 50), each with its event. */
  listInstanceOutcomes(
    stack: string,
    instance: string,
    options?: { limit?: number; before?: number },
  ): Promise<InstanceOutcomeEntry[]>;

  /** Closes the store; waits for a transaction still open. Closing twice is harmless. */
  close(): Promise<void>;
}
