import type { DatabaseSync, SQLInputValue, StatementSync } from "node:sqlite";
import { GalleyError } from "../core/errors.ts";
import type { Secrets } from "../core/secrets.ts";
import {
  now,
  number,
  oneOf,
  optNumber,
  optText,
  type Row,
  scrubbedJson,
  scrubbedText,
  text,
  toInstance,
  toStack,
} from "./codec.ts";
import { SqliteDeployments, type SqlAccess } from "./sqlite-deployments.ts";
import { SqliteEvents } from "./sqlite-events.ts";
import { announceFeed, SqliteFeed } from "./sqlite-feed.ts";
import { SqlitePanel } from "./sqlite-panel.ts";
import { defaultRetention, type Retention, SqliteServer } from "./sqlite-server.ts";
import {
  type InstanceInput,
  type InstanceRecord,
  type InstanceStatus,
  instanceStatuses,
  type StateVersion,
  type StatusTransition,
  type StoredStack,
} from "./store.ts";

// The SQL of the store on one node:sqlite connection, synchronous; sqlite.ts puts the async Store
// interface (and its transaction gate) on top.

/** One connection, synchronous (node:sqlite); SqliteStore puts the Store interface on it. */
export class SqliteDatabase {
  readonly #db: DatabaseSync;
  readonly #file: string;
  readonly #statements = new Map<string, StatementSync>();
  readonly #secrets: Secrets;
  #depth = 0;
  /** per open transaction level, the newest feed id it wrote (0: none); announced when the outermost commits */
  readonly #written: number[] = [];
  /** the deployments and their steps, on this connection */
  readonly deployments: SqliteDeployments;
  /** the lifecycle events and their outcomes, on this connection */
  readonly events: SqliteEvents;
  /** the server's tables (tokens, agents, their runs and metrics, audit, leases), on this connection */
  readonly server: SqliteServer;
  /** the feed, on this connection */
  readonly feed: SqliteFeed;
  /** the server's users and web sessions, and instances' reports, on this connection */
  readonly panel: SqlitePanel;

  constructor(db: DatabaseSync, file: string, secrets: Secrets, retention: Retention = defaultRetention) {
    this.#db = db;
    this.#file = file;
    this.#secrets = secrets;
    const access: SqlAccess = {
      file,
      secrets,
      run: (sql, ...params) => this.#run(sql, ...params),
      get: (sql, ...params) => this.#get(sql, ...params),
      all: (sql, ...params) => this.#all(sql, ...params),
      atomic: (fn) => this.atomic(fn),
      feed: (entry) => this.feed.emit(entry),
    };
    this.deployments = new SqliteDeployments(access);
    this.events = new SqliteEvents(access);
    this.server = new SqliteServer(access, retention);
    this.panel = new SqlitePanel(access);
    const feedRetention = { ms: retention.feedMs, keep: retention.feedKeep, every: retention.every };
    this.feed = new SqliteFeed(access, feedRetention, (id) => this.#feedWritten(id));
  }

  /** The database file this connection is open on. */
  get file(): string {
    return this.#file;
  }

  /** Opens a transaction, or a savepoint inside the open one. */
  begin(): void {
    this.#db.exec(this.#depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT galley_${this.#depth}`);
    this.#depth += 1;
    this.#written.push(0);
  }

  /** Commits (or rolls back) what the last begin opened. */
  end(commit: boolean): void {
    this.#depth -= 1;
    const written = this.#written.pop() ?? 0;
    const savepoint = `galley_${this.#depth}`;
    if (this.#depth === 0) this.#db.exec(commit ? "COMMIT" : "ROLLBACK");
    else this.#db.exec(commit ? `RELEASE ${savepoint}` : `ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
    // a rolled-back level's entries are gone: never announced
    if (!commit || written === 0) return;
    if (this.#depth === 0) announceFeed(this.#file, written);
    else this.#feedWritten(written);
  }

  /** Runs `fn` in a transaction; nested, a savepoint, so an inner failure undoes only its writes. */
  atomic<T>(fn: () => T): T {
    this.begin();
    try {
      const result = fn();
      this.end(true);
      return result;
    } catch (error) {
      this.end(false);
      throw error;
    }
  }

  saveStack(name: string, content: unknown): StoredStack {
    return this.atomic(() => {
      this.#run(
        `INSERT INTO stacks (name, content, applied_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET content = excluded.content, applied_at = excluded.applied_at`,
        name,
        scrubbedJson(content, this.#secrets),
        now(),
      );
      this.feed.emit({ stack: name, kind: "stack", data: {} });
      return this.getStack(name)!;
    });
  }

  getStack(name: string): StoredStack | undefined {
    const row = this.#get("SELECT * FROM stacks WHERE name = ?", name);
    return row && toStack(row);
  }

  listStacks(): StoredStack[] {
    return this.#all("SELECT * FROM stacks ORDER BY name").map(toStack);
  }

  nextStateVersion(stack: string, state: unknown): number {
    return this.atomic(() => {
      const row = this.#get("SELECT max(version) AS version FROM stack_states WHERE stack = ?", stack);
      const version = (optNumber(row?.version) ?? 0) + 1;
      this.#run(
        "INSERT INTO stack_states (stack, version, state, created_at) VALUES (?, ?, ?, ?)",
        stack,
        version,
        scrubbedJson(state, this.#secrets),
        now(),
      );
      this.feed.emit({ stack, kind: "state", data: { version } });
      return version;
    });
  }

  latestState(stack: string): StateVersion | undefined {
    const row = this.#get("SELECT * FROM stack_states WHERE stack = ? ORDER BY version DESC LIMIT 1", stack);
    if (!row) return undefined;
    return {
      stack: text(row.stack),
      version: number(row.version),
      state: JSON.parse(text(row.state)),
      createdAt: text(row.created_at),
    };
  }

  upsertInstance(input: InstanceInput): InstanceRecord {
    return this.atomic(() => {
      const at = now();
      const fields = [
        JSON.stringify(input.layers),
        input.provider,
        scrubbedText(input.address, this.#secrets) ?? null,
        scrubbedText(input.hostname, this.#secrets) ?? null,
        at,
      ];
      const existing = this.getInstance(input.stack, input.name);
      const address = fields[2] ?? undefined;
      if (existing) {
        this.#run(
          `UPDATE instances SET layers = ?, provider = ?, address = ?, hostname = ?, updated_at = ?
           WHERE stack = ? AND name = ?`,
          ...fields,
          input.stack,
          input.name,
        );
        if (existing.address !== address) this.#instanceChanged(input.stack, input.name, { address });
      } else {
        this.#run(
          `INSERT INTO instances (layers, provider, address, hostname, updated_at, stack, name, status)
           VALUES (?, ?, ?, ?, ?, ?, ?, 'stopped')`,
          ...fields,
          input.stack,
          input.name,
        );
        this.#recordTransition(input.stack, input.name, undefined, "stopped", "created", at);
        this.#instanceChanged(input.stack, input.name, { status: "stopped", reason: "created", address });
      }
      return this.getInstance(input.stack, input.name)!;
    });
  }

  getInstance(stack: string, name: string): InstanceRecord | undefined {
    const row = this.#get("SELECT * FROM instances WHERE stack = ? AND name = ?", stack, name);
    return row && toInstance(row);
  }

  listInstances(stack: string): InstanceRecord[] {
    return this.#all("SELECT * FROM instances WHERE stack = ? ORDER BY name", stack).map(toInstance);
  }

  setInstanceStatus(
    stack: string,
    name: string,
    to: InstanceStatus,
    reason: string,
  ): StatusTransition | undefined {
    oneOf(instanceStatuses, to, "instance status");
    return this.atomic(() => {
      const instance = this.getInstance(stack, name);
      if (!instance) throw this.#noInstance(stack, name);
      if (instance.status === to) return undefined;
      const at = now();
      this.#run(
        "UPDATE instances SET status = ?, updated_at = ? WHERE stack = ? AND name = ?",
        to,
        at,
        stack,
        name,
      );
      const transition = this.#recordTransition(stack, name, instance.status, to, reason, at);
      this.#instanceChanged(stack, name, { status: to, reason: transition.reason });
      return transition;
    });
  }

  setInstanceService(stack: string, name: string, inService: boolean): void {
    this.atomic(() => {
      const instance = this.getInstance(stack, name);
      if (!instance) throw this.#noInstance(stack, name);
      if (instance.inService === inService) return;
      this.#run(
        "UPDATE instances SET in_service = ?, updated_at = ? WHERE stack = ? AND name = ?",
        inService ? 1 : 0,
        now(),
        stack,
        name,
      );
      this.#instanceChanged(stack, name, { inService });
    });
  }

  setInstanceWeight(stack: string, name: string, weight: number): void {
    if (!Number.isInteger(weight) || weight < 0 || weight > 256) {
      throw new GalleyError(
        "STATE_INVALID",
        `instance ${name}: weight ${weight} is not a whole number from 0 to 256`,
        {
          hint: "HAProxy's weights go from 0 (no new requests) to 256",
        },
      );
    }
    this.atomic(() => {
      const instance = this.getInstance(stack, name);
      if (!instance) throw this.#noInstance(stack, name);
      if (instance.weight === weight) return;
      this.#run(
        "UPDATE instances SET weight = ?, updated_at = ? WHERE stack = ? AND name = ?",
        weight,
        now(),
        stack,
        name,
      );
      this.#instanceChanged(stack, name, { weight });
    });
  }

  statusHistory(stack: string, name: string): StatusTransition[] {
    const rows = this.#all(
      "SELECT * FROM instance_status_history WHERE stack = ? AND instance = ? ORDER BY id",
      stack,
      name,
    );
    return rows.map((row) => ({
      from: optText(row.from_status) as InstanceStatus | undefined,
      to: text(row.to_status) as InstanceStatus,
      at: text(row.at),
      reason: text(row.reason),
    }));
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Notes a feed id written by the open transaction, or announces it when none is open. */
  #feedWritten(id: number): void {
    const level = this.#written.length - 1;
    if (level < 0) announceFeed(this.#file, id);
    else this.#written[level] = Math.max(this.#written[level] ?? 0, id);
  }

  /** The feed entry of a change to an instance. */
  #instanceChanged(stack: string, name: string, data: Record<string, unknown>): void {
    this.feed.emit({ stack, kind: "instance", subject: `instance:${name}`, data });
  }

  #noInstance(stack: string, name: string): GalleyError {
    return new GalleyError("STATE_INVALID", `${this.#file}: no instance ${name} in stack ${stack}`, {
      hint: `galley stack up ${stack} records the stack's instances`,
    });
  }

  #recordTransition(
    stack: string,
    name: string,
    from: InstanceStatus | undefined,
    to: InstanceStatus,
    reason: string,
    at: string,
  ): StatusTransition {
    const scrubbed = scrubbedText(reason, this.#secrets) ?? "";
    this.#run(
      "INSERT INTO instance_status_history (stack, instance, from_status, to_status, at, reason) VALUES (?, ?, ?, ?, ?, ?)",
      stack,
      name,
      from ?? null,
      to,
      at,
      scrubbed,
    );
    return { from, to, at, reason: scrubbed };
  }

  #statement(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #run(sql: string, ...params: SQLInputValue[]) {
    return this.#statement(sql).run(...params);
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#statement(sql).get(...params);
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#statement(sql).all(...params);
  }
}
