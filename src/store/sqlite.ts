import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SqliteDatabase } from "./sqlite-database.ts";
import { errorMessage, GalleyError, isGalleyError } from "../core/errors.ts";
import { currentSecrets, type Secrets } from "../core/secrets.ts";
import { migrate } from "./migrations.ts";
import { defaultRetention, type Retention } from "./sqlite-server.ts";
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
  InstanceInput,
  InstanceOutcome,
  InstanceRecord,
  InstanceStatus,
  MetricSample,
  StateVersion,
  StatusTransition,
  Store,
  StoredStack,
  TokenInput,
  TokenRecord,
} from "./store.ts";

/** Where a kitchen keeps its store: `<kitchen>/.galley/galley.db`. */
export function storeFile(kitchen: string): string {
  return path.join(kitchen, ".galley", "galley.db");
}

/**
 * How to open a store: the registry whose secrets it scrubs, kept for the store's life (default:
 * the current one when it is opened, `currentSecrets()`: the CLI command's, or the process's
 * outside any run).
 */
export interface SqliteStoreOptions {
  /** a run's registry (`new Secrets(processSecrets)`): scrubs the run's secrets and the process's */
  secrets?: Secrets | undefined;
  /** how much agent history to keep (default: metrics 7 days, 500 runs per instance, pruned every 100th insert) */
  retention?: Partial<Retention> | undefined;
}

/**
 * Opens (creating it and its folder if needed) the SQLite store at `file` and brings its schema up
 * to date. WAL mode, so readers never wait for a writer; several processes may open the same file.
 * The folder is made 0700 and the database 0600 (with its -wal and -shm files) before anything is
 * written; looser modes of existing ones are tightened.
 *
 * @example const store = openSqliteStore(storeFile(kitchen)); try { … } finally { store.close(); }
 */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Store {
  let db: DatabaseSync | undefined;
  try {
    makePrivate(file);
    db = new DatabaseSync(file);
    // wait for another process's write lock instead of failing at once
    db.exec("PRAGMA busy_timeout = 10000");
    db.exec("PRAGMA foreign_keys = ON");
    const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
    if (mode !== "wal")
      throw new Error(`the file system does not allow WAL mode (journal mode: ${String(mode)})`);
    // in WAL mode NORMAL is still crash safe; only the last commits may be lost on power loss
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, file);
    const secrets = options.secrets ?? currentSecrets();
    const retention = { ...defaultRetention, ...options.retention };
    return new SqliteStore(
      { db: new SqliteDatabase(db, file, secrets, retention), gate: undefined },
      undefined,
    );
  } catch (error) {
    db?.close();
    if (isGalleyError(error)) throw error;
    throw new GalleyError("STATE_INVALID", `${file}: cannot open the store: ${errorMessage(error)}`, {
      hint: "the store must be a Galley SQLite database on a local file system; move a damaged file away to start afresh",
      cause: error,
    });
  }
}

/**
 * The store holds stacks, reports and logs: only its owner may read it, like ~/.ssh. The database
 * file is created 0600 before SQLite opens it, because SQLite gives the -wal and -shm files it
 * creates the database file's mode.
 */
function makePrivate(file: string): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  tighten(dir, 0o700);
  closeSync(openSync(file, "a", 0o600));
  for (const each of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) tighten(each, 0o600);
}

/** Clears the permission bits of `target` outside `allowed`; a missing file, or one we may not chmod, is left. */
function tighten(target: string, allowed: number): void {
  const mode = statSync(target, { throwIfNoEntry: false })?.mode;
  if (mode === undefined || (mode & 0o777 & ~allowed) === 0) return;
  try {
    chmodSync(target, mode & 0o777 & allowed);
  } catch (error) {
    // another user's file (a shared kitchen): its owner decides
    if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error;
  }
}

/** One connection and the transaction holding it, shared by the store and its transactions' views. */
interface Connection {
  db: SqliteDatabase;
  /** set while a transaction runs: calls from outside it wait for it */
  gate: Promise<void> | undefined;
}

/**
 * The Store interface on one SQLite connection. The work is synchronous inside (node:sqlite); the
 * promises let the interface be the one a networked backend implements. `scope` is set on the view a
 * transaction hands its callback, whose calls run at once; the store's own calls wait for the gate.
 */
class SqliteStore implements Store {
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
    return (await this.#use()).createEvent(input);
  }

  async startEvent(id: number): Promise<EventRecord> {
    return (await this.#use()).startEvent(id);
  }

  async finishEvent(
    id: number,
    status: "succeeded" | "failed" | "superseded",
    bundle?: string,
  ): Promise<EventRecord> {
    return (await this.#use()).finishEvent(id, status, bundle);
  }

  async recordInstanceOutcome(outcome: InstanceOutcome): Promise<void> {
    (await this.#use()).recordInstanceOutcome(outcome);
  }

  async listEvents(stack: string, options: { limit?: number } = {}): Promise<EventRecord[]> {
    return (await this.#use()).listEvents(stack, options);
  }

  async getEvent(id: number): Promise<EventDetail | undefined> {
    return (await this.#use()).getEvent(id);
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
