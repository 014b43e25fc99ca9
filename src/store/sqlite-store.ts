import { GalleyError } from "../core/errors.ts";
import type { SqliteDatabase } from "./sqlite-database.ts";
import { watchFeedFile } from "./sqlite-feed.ts";
import type {
  AgentRecord,
  AgentRunInput,
  AgentRunRecord,
  AuditInput,
  AuditRecord,
  DeploymentDetail,
  DeploymentInput,
  DeploymentRecord,
  DeploymentStep,
  EnrollmentInput,
  EventDetail,
  EventInput,
  EventRecord,
  FeedEntry,
  FeedInput,
  FeedQuery,
  Grant,
  InstanceInput,
  InstanceOutcome,
  InstanceOutcomeEntry,
  InstanceRecord,
  InstanceStatus,
  MetricSample,
  SessionActor,
  SessionInput,
  SessionRecord,
  StateVersion,
  StatusTransition,
  Store,
  StoredStack,
  TokenInput,
  TokenRecord,
  UserInput,
  UserRecord,
} from "./store.ts";

// The async Store interface on one SQLite connection (sqlite-database.ts), with its transaction gate.

/** One connection and the transaction holding it, shared by the store and its transactions' views. */
export interface Connection {
  db: SqliteDatabase;
  /** set while a transaction runs: calls from outside it wait for it */
  gate: Promise<void> | undefined;
}

/**
 * The Store interface on one SQLite connection. The work is synchronous inside (node:sqlite); the
 * promises let the interface be the one a networked backend implements. `scope` is set on the view a
 * transaction hands its callback, whose calls run at once; the store's own calls wait for the gate.
 */
export class SqliteStore implements Store {
  readonly #connection: Connection;
  readonly #scope: { open: boolean } | undefined;

  constructor(connection: Connection, scope: { open: boolean } | undefined) {
    this.#connection = connection;
    this.#scope = scope;
  }

  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#scope) return this.#within(await this.#use(), fn, this);
    const db = await this.#use();
    // no await between the wait above and taking the gate: no other call can slip in
    let release = () => {};
    this.#connection.gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const scope = { open: true };
    try {
      return await this.#within(db, fn, new SqliteStore(this.#connection, scope));
    } finally {
      scope.open = false;
      this.#connection.gate = undefined;
      release();
    }
  }

  async saveStack(name: string, content: unknown): Promise<StoredStack> {
    return (await this.#use()).saveStack(name, content);
  }

  async getStack(name: string): Promise<StoredStack | undefined> {
    return (await this.#use()).getStack(name);
  }

  async listStacks(): Promise<StoredStack[]> {
    return (await this.#use()).listStacks();
  }

  async nextStateVersion(stack: string, state: unknown): Promise<number> {
    return (await this.#use()).nextStateVersion(stack, state);
  }

  async latestState(stack: string): Promise<StateVersion | undefined> {
    return (await this.#use()).latestState(stack);
  }

  async upsertInstance(input: InstanceInput): Promise<InstanceRecord> {
    return (await this.#use()).upsertInstance(input);
  }

  async getInstance(stack: string, name: string): Promise<InstanceRecord | undefined> {
    return (await this.#use()).getInstance(stack, name);
  }

  async listInstances(stack: string): Promise<InstanceRecord[]> {
    return (await this.#use()).listInstances(stack);
  }

  async setInstanceStatus(
    stack: string,
    name: string,
    to: InstanceStatus,
    reason: string,
  ): Promise<StatusTransition | undefined> {
    return (await this.#use()).setInstanceStatus(stack, name, to, reason);
  }

  async statusHistory(stack: string, name: string): Promise<StatusTransition[]> {
    return (await this.#use()).statusHistory(stack, name);
  }

  async setInstanceService(stack: string, name: string, inService: boolean): Promise<void> {
    (await this.#use()).setInstanceService(stack, name, inService);
  }

  async setInstanceWeight(stack: string, name: string, weight: number): Promise<void> {
    (await this.#use()).setInstanceWeight(stack, name, weight);
  }

  async createEvent(input: EventInput): Promise<EventRecord> {
    return (await this.#use()).events.createEvent(input);
  }

  async startEvent(id: number): Promise<EventRecord> {
    return (await this.#use()).events.startEvent(id);
  }

  async finishEvent(
    id: number,
    status: "succeeded" | "failed" | "superseded",
    bundle?: string,
  ): Promise<EventRecord> {
    return (await this.#use()).events.finishEvent(id, status, bundle);
  }

  async recordInstanceOutcome(outcome: InstanceOutcome): Promise<void> {
    (await this.#use()).events.recordInstanceOutcome(outcome);
  }

  async listEvents(stack: string, options: { limit?: number } = {}): Promise<EventRecord[]> {
    return (await this.#use()).events.listEvents(stack, options);
  }

  async getEvent(id: number): Promise<EventDetail | undefined> {
    return (await this.#use()).events.getEvent(id);
  }

  async createDeployment(input: DeploymentInput): Promise<DeploymentRecord> {
    return (await this.#use()).deployments.createDeployment(input);
  }

  async startDeployment(id: number): Promise<DeploymentRecord> {
    return (await this.#use()).deployments.startDeployment(id);
  }

  async finishDeployment(
    id: number,
    status: "succeeded" | "failed" | "rolled_back" | "interrupted",
    note?: string,
  ): Promise<DeploymentRecord> {
    return (await this.#use()).deployments.finishDeployment(id, status, note);
  }

  async setDeploymentBundle(id: number, bundle: string): Promise<DeploymentRecord> {
    return (await this.#use()).deployments.setDeploymentBundle(id, bundle);
  }

  async getDeployment(id: number): Promise<DeploymentDetail | undefined> {
    return (await this.#use()).deployments.getDeployment(id);
  }

  async listDeployments(
    stack: string,
    options: { app?: string; limit?: number } = {},
  ): Promise<DeploymentRecord[]> {
    return (await this.#use()).deployments.listDeployments(stack, options);
  }

  async deployedRevision(stack: string, app: string): Promise<DeploymentRecord | undefined> {
    return (await this.#use()).deployments.deployedRevision(stack, app);
  }

  async recordDeploymentStep(step: DeploymentStep): Promise<void> {
    (await this.#use()).deployments.recordDeploymentStep(step);
  }

  async claimMigration(id: number, instance: string): Promise<"claimed" | "done" | "running" | "none"> {
    return (await this.#use()).deployments.claimMigration(id, instance);
  }

  async finishMigration(id: number, status: "done" | "failed"): Promise<DeploymentRecord> {
    return (await this.#use()).deployments.finishMigration(id, status);
  }

  async resetMigration(id: number, to: "pending" | "done"): Promise<DeploymentRecord> {
    return (await this.#use()).deployments.resetMigration(id, to);
  }

  async createToken(input: TokenInput): Promise<TokenRecord> {
    return (await this.#use()).server.createToken(input);
  }

  async tokenByHash(hash: string): Promise<TokenRecord | undefined> {
    return (await this.#use()).server.tokenByHash(hash);
  }

  async touchToken(id: string, at: string): Promise<void> {
    (await this.#use()).server.touchToken(id, at);
  }

  async listTokens(): Promise<TokenRecord[]> {
    return (await this.#use()).server.listTokens();
  }

  async revokeToken(id: string): Promise<TokenRecord> {
    return (await this.#use()).server.revokeToken(id);
  }

  async createEnrollment(input: EnrollmentInput): Promise<void> {
    (await this.#use()).server.createEnrollment(input);
  }

  async consumeEnrollment(
    hash: string,
    now: string,
  ): Promise<{ stack: string; instance: string } | undefined> {
    return (await this.#use()).server.consumeEnrollment(hash, now);
  }

  async registerAgent(input: { stack: string; instance: string; publicKey: string }): Promise<AgentRecord> {
    return (await this.#use()).server.registerAgent(input);
  }

  async getAgent(stack: string, instance: string): Promise<AgentRecord | undefined> {
    return (await this.#use()).server.getAgent(stack, instance);
  }

  async listAgents(stack?: string): Promise<AgentRecord[]> {
    return (await this.#use()).server.listAgents(stack);
  }

  async agentSeen(stack: string, instance: string, at: string): Promise<void> {
    (await this.#use()).server.agentSeen(stack, instance, at);
  }

  async recordAgentRun(run: AgentRunInput): Promise<"recorded" | "duplicate"> {
    return (await this.#use()).server.recordAgentRun(run);
  }

  async listAgentRuns(
    stack: string,
    instance: string,
    options: { limit?: number } = {},
  ): Promise<AgentRunRecord[]> {
    return (await this.#use()).server.listAgentRuns(stack, instance, options);
  }

  async recordMetrics(sample: MetricSample): Promise<void> {
    (await this.#use()).server.recordMetrics(sample);
  }

  async metricsSince(stack: string, since: string): Promise<MetricSample[]> {
    return (await this.#use()).server.metricsSince(stack, since);
  }

  async appendAudit(entry: AuditInput): Promise<AuditRecord> {
    return (await this.#use()).server.appendAudit(entry);
  }

  async listAudit(
    options: { stack?: string; outcome?: AuditInput["outcome"]; limit?: number } = {},
  ): Promise<AuditRecord[]> {
    return (await this.#use()).server.listAudit(options);
  }

  async acquireLease(name: string, holder: string, ttlMs: number, now?: Date): Promise<boolean> {
    return (await this.#use()).server.acquireLease(name, holder, ttlMs, now);
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    (await this.#use()).server.releaseLease(name, holder);
  }

  async appendFeed(entries: readonly FeedInput[]): Promise<FeedEntry[]> {
    return (await this.#use()).feed.append(entries);
  }

  async readFeed(query: FeedQuery): Promise<FeedEntry[]> {
    return (await this.#use()).feed.read(query);
  }

  async countFeed(query: FeedQuery): Promise<number> {
    return (await this.#use()).feed.count(query);
  }

  async lastFeedId(): Promise<number> {
    return (await this.#use()).feed.lastId();
  }

  watchFeed(listener: (lastId: number) => void): () => void {
    return watchFeedFile(this.#connection.db.file, listener);
  }

  async pruneFeed(before: string, keep: number): Promise<number> {
    return (await this.#use()).feed.prune(before, keep);
  }

  async createUser(input: UserInput): Promise<UserRecord> {
    return (await this.#use()).panel.createUser(input);
  }

  async getUser(name: string): Promise<UserRecord | undefined> {
    return (await this.#use()).panel.getUser(name);
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.#use()).panel.listUsers();
  }

  async updateUser(
    name: string,
    change: { passwordHash?: string; grants?: Grant[]; lastLoginAt?: string },
  ): Promise<UserRecord> {
    return (await this.#use()).panel.updateUser(name, change);
  }

  async deleteUser(name: string): Promise<boolean> {
    return (await this.#use()).panel.deleteUser(name);
  }

  async createSession(input: SessionInput): Promise<SessionRecord> {
    return (await this.#use()).panel.createSession(input);
  }

  async sessionByHash(hash: string, now: string): Promise<SessionRecord | undefined> {
    return (await this.#use()).panel.sessionByHash(hash, now);
  }

  async touchSession(hash: string, at: string, expiresAt: string): Promise<void> {
    (await this.#use()).panel.touchSession(hash, at, expiresAt);
  }

  async deleteSession(hash: string): Promise<void> {
    (await this.#use()).panel.deleteSession(hash);
  }

  async deleteSessionsOf(actor: SessionActor): Promise<number> {
    return (await this.#use()).panel.deleteSessionsOf(actor);
  }

  async deleteExpiredSessions(now: string): Promise<number> {
    return (await this.#use()).panel.deleteExpiredSessions(now);
  }

  async listInstanceOutcomes(
    stack: string,
    instance: string,
    options: { limit?: number; before?: number } = {},
  ): Promise<InstanceOutcomeEntry[]> {
    return (await this.#use()).panel.listInstanceOutcomes(stack, instance, options);
  }

  async close(): Promise<void> {
    if (this.#scope) throw misuse("close the store, not the transaction's view of it");
    (await this.#use()).close();
  }

  /** The connection, once no transaction of another caller holds it. */
  async #use(): Promise<SqliteDatabase> {
    if (this.#scope) {
      if (!this.#scope.open) throw misuse("use the store, not the view of a transaction that ended");
      return this.#connection.db;
    }
    while (this.#connection.gate) await this.#connection.gate;
    return this.#connection.db;
  }

  async #within<T>(db: SqliteDatabase, fn: (tx: Store) => Promise<T>, tx: Store): Promise<T> {
    db.begin();
    let result: T;
    try {
      result = await fn(tx);
    } catch (error) {
      db.end(false);
      throw error;
    }
    db.end(true);
    return result;
  }
}

/** A caller's mistake with a transaction's view. */
function misuse(hint: string): GalleyError {
  return new GalleyError("STATE_INVALID", "the store was used outside the transaction it belongs to", {
    hint,
  });
}
