import { randomBytes } from "node:crypto";
import { GalleyError } from "../core/errors.ts";
import { now, number, oneOf, scrubbedJson, scrubbedText, text } from "./codec.ts";
import { badHash, checkedGrants, isoTime, toAgent, toAgentRun, toAudit, toToken } from "./codec-server.ts";
import type { SqlAccess } from "./sqlite-deployments.ts";
import {
  type AgentRecord,
  type AgentRunInput,
  type AgentRunRecord,
  type AuditInput,
  type AuditRecord,
  agentRunKinds,
  agentRunModes,
  agentRunStatuses,
  auditOutcomes,
  type EnrollmentInput,
  type MetricSample,
  type TokenInput,
  type TokenRecord,
} from "./store.ts";

// The server's tables on one node:sqlite connection, synchronous: admin tokens, agent enrollments,
// enrolled agents, their run reports and metrics, the audit log and the schedulers' leases. Beside
// sqlite-database.ts, which hands it its statements.

/** How much of the agents' history the store keeps; pruned on insert, every `every`th insert. */
export interface Retention {
  /** metrics samples older than this are deleted (default 7 days) */
  metricsMs: number;
  /** agent runs beyond the newest this many of each instance are deleted (default 500) */
  runsPerInstance: number;
  /** prune on the first insert of a connection and every this many inserts after (default 100) */
  every: number;
  /** feed entries older than this are deleted (default 30 days)… */
  feedMs: number;
  /** …but the newest this many are kept whatever their age (default 200,000) */
  feedKeep: number;
}

/** The retention of a store opened without one. */
export const defaultRetention: Retention = {
  metricsMs: 7 * 24 * 60 * 60_000,
  runsPerInstance: 500,
  every: 100,
  feedMs: 30 * 24 * 60 * 60_000,
  feedKeep: 200_000,
};

/** The Store's server methods, synchronous, on one connection. */
export class SqliteServer {
  readonly #sql: SqlAccess;
  readonly #retention: Retention;
  #runInserts = 0;
  #metricInserts = 0;

  constructor(sql: SqlAccess, retention: Retention = defaultRetention) {
    this.#sql = sql;
    this.#retention = retention;
  }

  createToken(input: TokenInput): TokenRecord {
    const grants = checkedGrants(input.grants);
    const expiresAt = input.expiresAt === undefined ? null : isoTime(input.expiresAt, "token expiry");
    if (!/^[0-9a-f]{64}$/.test(input.hash)) throw badHash("token");
    return this.#sql.atomic(() => {
      if (this.#sql.get("SELECT id FROM tokens WHERE hash = ?", input.hash)) {
        throw new GalleyError("STATE_INVALID", `${this.#sql.file}: a token with this secret already exists`, {
          hint: "make a new secret (32 random bytes) for every token",
        });
      }
      const id = randomBytes(6).toString("hex");
      this.#sql.run(
        "INSERT INTO tokens (id, name, grants, hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        id,
        this.#sql.secrets.scrub(input.name),
        JSON.stringify(grants),
        input.hash,
        expiresAt,
        now(),
      );
      return this.#token(id);
    });
  }

  tokenByHash(hash: string): TokenRecord | undefined {
    const row = this.#sql.get("SELECT * FROM tokens WHERE hash = ?", hash);
    return row && toToken(row);
  }

  touchToken(id: string, at: string): void {
    const changed = this.#sql.run(
      "UPDATE tokens SET last_used_at = ? WHERE id = ?",
      isoTime(at, "token use time"),
      id,
    );
    if (Number(changed.changes) === 0) throw this.#noToken(id);
  }

  listTokens(): TokenRecord[] {
    return this.#sql.all("SELECT * FROM tokens ORDER BY created_at, rowid").map(toToken);
  }

  revokeToken(id: string): TokenRecord {
    return this.#sql.atomic(() => {
      this.#token(id);
      this.#sql.run("UPDATE tokens SET revoked_at = coalesce(revoked_at, ?) WHERE id = ?", now(), id);
      return this.#token(id);
    });
  }

  createEnrollment(input: EnrollmentInput): void {
    const expiresAt = isoTime(input.expiresAt, "enrollment expiry");
    if (!/^[0-9a-f]{64}$/.test(input.hash)) throw badHash("enrollment");
    this.#sql.atomic(() => {
      // one pending enrollment per instance: a new one replaces it (the old token stops working)
      this.#sql.run(
        "DELETE FROM enrollments WHERE stack = ? AND instance = ? AND used_at IS NULL",
        input.stack,
        input.instance,
      );
      if (this.#sql.get("SELECT stack FROM enrollments WHERE hash = ?", input.hash)) {
        throw new GalleyError(
          "STATE_INVALID",
          `${this.#sql.file}: an enrollment with this secret already exists`,
          { hint: "make a new secret (32 random bytes) for every enrollment token" },
        );
      }
      this.#sql.run(
        "INSERT INTO enrollments (hash, stack, instance, expires_at, created_at) VALUES (?, ?, ?, ?, ?)",
        input.hash,
        input.stack,
        input.instance,
        expiresAt,
        now(),
      );
    });
  }

  consumeEnrollment(hash: string, at: string): { stack: string; instance: string } | undefined {
    const when = isoTime(at, "enrollment time");
    // one UPDATE guarded by the state: of two callers (or processes) only one changes the row
    return this.#sql.atomic(() => {
      const changed = this.#sql.run(
        "UPDATE enrollments SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?",
        when,
        hash,
        when,
      );
      if (Number(changed.changes) !== 1) return undefined;
      const row = this.#sql.get("SELECT stack, instance FROM enrollments WHERE hash = ?", hash);
      return row && { stack: text(row.stack), instance: text(row.instance) };
    });
  }

  registerAgent(input: { stack: string; instance: string; publicKey: string }): AgentRecord {
    return this.#sql.atomic(() => {
      this.#sql.run(
        `INSERT INTO agents (stack, instance, public_key, generation, enrolled_at) VALUES (?, ?, ?, 1, ?)
         ON CONFLICT (stack, instance) DO UPDATE SET public_key = excluded.public_key,
           generation = agents.generation + 1, enrolled_at = excluded.enrolled_at, last_seen_at = NULL`,
        input.stack,
        input.instance,
        input.publicKey,
        now(),
      );
      return this.getAgent(input.stack, input.instance)!;
    });
  }

  getAgent(stack: string, instance: string): AgentRecord | undefined {
    const row = this.#sql.get("SELECT * FROM agents WHERE stack = ? AND instance = ?", stack, instance);
    return row && toAgent(row);
  }

  listAgents(stack?: string): AgentRecord[] {
    const rows =
      stack === undefined
        ? this.#sql.all("SELECT * FROM agents ORDER BY stack, instance")
        : this.#sql.all("SELECT * FROM agents WHERE stack = ? ORDER BY instance", stack);
    return rows.map(toAgent);
  }

  agentSeen(stack: string, instance: string, at: string): void {
    const changed = this.#sql.run(
      "UPDATE agents SET last_seen_at = ? WHERE stack = ? AND instance = ?",
      isoTime(at, "agent seen time"),
      stack,
      instance,
    );
    if (Number(changed.changes) === 0) {
      throw new GalleyError(
        "STATE_INVALID",
        `${this.#sql.file}: no agent enrolled for ${stack}/${instance}`,
        {
          hint: `enroll it: galley agent enroll --server URL --token T on the instance ${instance}`,
        },
      );
    }
  }

  recordAgentRun(run: AgentRunInput): "recorded" | "duplicate" {
    oneOf(agentRunKinds, run.kind, "agent run kind");
    oneOf(agentRunModes, run.mode, "agent run mode");
    oneOf(agentRunStatuses, run.status, "agent run status");
    if (!Number.isSafeInteger(run.seq) || run.seq < 0 || !Number.isSafeInteger(run.generation)) {
      throw new GalleyError(
        "STATE_INVALID",
        `agent run of ${run.stack}/${run.instance}: seq ${run.seq} and generation ${run.generation} must be whole numbers`,
        { hint: "the agent numbers its reports 0, 1, 2… per enrollment" },
      );
    }
    const { secrets } = this.#sql;
    return this.#sql.atomic(() => {
      const inserted = this.#sql.run(
        `INSERT INTO agent_runs (stack, instance, generation, seq, kind, mode, bundle, status, changed, failed,
           report, started_at, finished_at, received_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (stack, instance, generation, seq) DO NOTHING`,
        run.stack,
        run.instance,
        run.generation,
        run.seq,
        run.kind,
        run.mode,
        scrubbedText(run.bundle, secrets) ?? null,
        run.status,
        Math.trunc(number(run.changed)),
        Math.trunc(number(run.failed)),
        run.report === undefined ? null : scrubbedJson(run.report, secrets),
        secrets.scrub(run.startedAt),
        secrets.scrub(run.finishedAt),
        now(),
      );
      if (Number(inserted.changes) === 0) return "duplicate";
      const { seq, generation, kind, mode, status, changed, failed, finishedAt } = run;
      this.#sql.feed({
        stack: run.stack,
        kind: "run",
        subject: `instance:${run.instance}`,
        data: { seq, generation, kind, mode, status, changed, failed, finishedAt },
      });
      if (this.#runInserts++ % this.#retention.every === 0) {
        this.#sql.run(
          `DELETE FROM agent_runs WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER
             (PARTITION BY stack, instance ORDER BY id DESC) AS n FROM agent_runs) WHERE n > ?)`,
          this.#retention.runsPerInstance,
        );
      }
      return "recorded";
    });
  }

  listAgentRuns(stack: string, instance: string, options: { limit?: number } = {}): AgentRunRecord[] {
    return this.#sql
      .all(
        "SELECT * FROM agent_runs WHERE stack = ? AND instance = ? ORDER BY id DESC LIMIT ?",
        stack,
        instance,
        options.limit ?? 50,
      )
      .map(toAgentRun);
  }

  recordMetrics(sample: MetricSample): void {
    const at = isoTime(sample.at, "metrics time");
    for (const [what, value] of [
      ["cpu", sample.cpu],
      ["memory", sample.memory],
      ["load", sample.load],
    ] as const) {
      if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
        throw new GalleyError(
          "STATE_INVALID",
          `metrics of ${sample.stack}/${sample.instance}: ${what} ${String(value)} is not a number of 0 or more`,
          { hint: "cpu and memory are percentages (0..100), load the 1-minute load average" },
        );
      }
    }
    this.#sql.atomic(() => {
      this.#sql.run(
        "INSERT INTO metrics (stack, instance, at, cpu, memory, load) VALUES (?, ?, ?, ?, ?, ?)",
        sample.stack,
        sample.instance,
        at,
        sample.cpu,
        sample.memory,
        sample.load,
      );
      if (this.#metricInserts++ % this.#retention.every === 0) {
        // from the earlier of now and the sample: a test's fake clock in the past keeps its samples,
        // an agent's clock far ahead prunes nobody's
        const from = Math.min(Date.now(), Date.parse(at));
        const cutoff = new Date(from - this.#retention.metricsMs).toISOString();
        this.#sql.run("DELETE FROM metrics WHERE at < ?", cutoff);
      }
    });
  }

  metricsSince(stack: string, since: string): MetricSample[] {
    return this.#sql
      .all(
        "SELECT * FROM metrics WHERE stack = ? AND at >= ? ORDER BY at, id",
        stack,
        isoTime(since, "metrics start"),
      )
      .map((row) => ({
        stack: text(row.stack),
        instance: text(row.instance),
        at: text(row.at),
        cpu: number(row.cpu),
        memory: number(row.memory),
        load: number(row.load),
      }));
  }

  appendAudit(entry: AuditInput): AuditRecord {
    oneOf(auditOutcomes, entry.outcome, "audit outcome");
    const { secrets } = this.#sql;
    const result = this.#sql.run(
      "INSERT INTO audit (at, actor, action, stack, target, outcome, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      now(),
      secrets.scrub(entry.actor),
      secrets.scrub(entry.action),
      entry.stack ?? null,
      scrubbedText(entry.target, secrets) ?? null,
      entry.outcome,
      scrubbedText(entry.reason, secrets) ?? null,
      entry.detail === undefined ? null : scrubbedJson(entry.detail, secrets),
    );
    const row = this.#sql.get("SELECT * FROM audit WHERE id = ?", Number(result.lastInsertRowid));
    return toAudit(row!);
  }

  listAudit(
    options: { stack?: string; outcome?: AuditInput["outcome"]; limit?: number } = {},
  ): AuditRecord[] {
    if (options.outcome !== undefined) oneOf(auditOutcomes, options.outcome, "audit outcome");
    // one statement for every filter: a NULL parameter matches every row
    return this.#sql
      .all(
        `SELECT * FROM audit WHERE (?1 IS NULL OR stack = ?1) AND (?2 IS NULL OR outcome = ?2)
         ORDER BY id DESC LIMIT ?3`,
        options.stack ?? null,
        options.outcome ?? null,
        options.limit ?? 100,
      )
      .map(toAudit);
  }

  acquireLease(name: string, holder: string, ttlMs: number, at: Date = new Date()): boolean {
    if (!Number.isFinite(ttlMs) || ttlMs <= 0 || Number.isNaN(at.getTime())) {
      throw new GalleyError(
        "STATE_INVALID",
        `lease ${name}: a lease needs a positive duration and a valid time`,
        {
          hint: "pass the lease's time to live in milliseconds (e.g. 3 scheduler ticks)",
        },
      );
    }
    return this.#sql.atomic(() => {
      const row = this.#sql.get("SELECT holder, expires_at FROM leases WHERE name = ?", name);
      const free = !row || text(row.holder) === holder || Date.parse(text(row.expires_at)) <= at.getTime();
      if (!free) return false;
      this.#sql.run(
        `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`,
        name,
        holder,
        new Date(at.getTime() + ttlMs).toISOString(),
      );
      return true;
    });
  }

  releaseLease(name: string, holder: string): void {
    this.#sql.run("DELETE FROM leases WHERE name = ? AND holder = ?", name, holder);
  }

  #token(id: string): TokenRecord {
    const row = this.#sql.get("SELECT * FROM tokens WHERE id = ?", id);
    if (!row) throw this.#noToken(id);
    return toToken(row);
  }

  #noToken(id: string): GalleyError {
    return new GalleyError("STATE_INVALID", `${this.#sql.file}: no token ${id}`, {
      hint: "galley token list shows the tokens and their ids",
    });
  }
}
