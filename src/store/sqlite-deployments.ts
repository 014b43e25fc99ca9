import type { SQLInputValue, StatementResultingChanges } from "node:sqlite";
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
} from "./codec.ts";
import {
  type DeploymentDetail,
  type DeploymentInput,
  type DeploymentRecord,
  type DeploymentStatus,
  type DeploymentStep,
  type FeedInput,
  type MigrationState,
  stepStatuses,
} from "./store.ts";

// The deployments and their steps on one node:sqlite connection, synchronous: the SQL behind the
// Store's deployment methods, beside sqlite-database.ts, which hands it its statements.

/** What the deployment tables need of a connection. */
export interface SqlAccess {
  file: string;
  secrets: Secrets;
  run(sql: string, ...params: SQLInputValue[]): StatementResultingChanges;
  get(sql: string, ...params: SQLInputValue[]): Row | undefined;
  all(sql: string, ...params: SQLInputValue[]): Row[];
  /** runs `fn` in a transaction (a savepoint inside an open one) */
  atomic<T>(fn: () => T): T;
  /** appends the feed entry of a change, in the caller's transaction */
  feed(entry: FeedInput): void;
}

const finishedStatuses = [
  "succeeded",
  "failed",
  "rolled_back",
  "interrupted",
] as const satisfies readonly DeploymentStatus[];

/** The Store's deployment methods, synchronous, on one connection. */
export class SqliteDeployments {
  readonly #sql: SqlAccess;

  constructor(sql: SqlAccess) {
    this.#sql = sql;
  }

  createDeployment(input: DeploymentInput): DeploymentRecord {
    oneOf(["none", "pending"], input.migration, "migration state");
    const { secrets } = this.#sql;
    return this.#sql.atomic(() => {
      if (input.rollbackOf !== undefined) this.#deployment(input.rollbackOf);
      const result = this.#sql.run(
        `INSERT INTO deployments (stack, app, revision, requested, bundle, attributes, strategy, params,
           requested_by, rollback_of, status, migration, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
        input.stack,
        input.app,
        secrets.scrub(input.revision),
        secrets.scrub(input.requested),
        scrubbedText(input.bundle, secrets) ?? null,
        scrubbedJson(input.attributes, secrets),
        secrets.scrub(input.strategy),
        scrubbedJson(input.params, secrets),
        secrets.scrub(input.user),
        input.rollbackOf ?? null,
        input.migration,
        now(),
      );
      return this.#changed(Number(result.lastInsertRowid));
    });
  }

  startDeployment(id: number): DeploymentRecord {
    return this.#sql.atomic(() => {
      const deployment = this.#deployment(id);
      if (
        deployment.status !== "pending" &&
        deployment.status !== "running" &&
        deployment.status !== "interrupted"
      )
        throw this.#ended(deployment, "started again");
      // a resumed deployment keeps its first start; it is not finished any more
      this.#sql.run(
        "UPDATE deployments SET status = 'running', started_at = coalesce(started_at, ?), finished_at = NULL WHERE id = ?",
        now(),
        id,
      );
      return this.#changed(id);
    });
  }

  finishDeployment(id: number, status: (typeof finishedStatuses)[number], note?: string): DeploymentRecord {
    oneOf(finishedStatuses, status, "deployment end status");
    return this.#sql.atomic(() => {
      this.#deployment(id);
      this.#sql.run(
        "UPDATE deployments SET status = ?, finished_at = ?, note = coalesce(?, note) WHERE id = ?",
        status,
        now(),
        scrubbedText(note, this.#sql.secrets) ?? null,
        id,
      );
      return this.#changed(id);
    });
  }

  setDeploymentBundle(id: number, bundle: string): DeploymentRecord {
    return this.#sql.atomic(() => {
      this.#deployment(id);
      this.#sql.run("UPDATE deployments SET bundle = ? WHERE id = ?", this.#sql.secrets.scrub(bundle), id);
      return this.#deployment(id);
    });
  }

  getDeployment(id: number): DeploymentDetail | undefined {
    const row = this.#sql.get("SELECT * FROM deployments WHERE id = ?", id);
    if (!row) return undefined;
    const steps = this.#sql.all("SELECT * FROM deployment_steps WHERE deployment_id = ? ORDER BY id", id);
    return { ...toDeployment(row), steps: steps.map(toStep) };
  }

  listDeployments(stack: string, options: { app?: string; limit?: number } = {}): DeploymentRecord[] {
    const limit = options.limit ?? 50;
    const rows =
      options.app === undefined
        ? this.#sql.all("SELECT * FROM deployments WHERE stack = ? ORDER BY id DESC LIMIT ?", stack, limit)
        : this.#sql.all(
            "SELECT * FROM deployments WHERE stack = ? AND app = ? ORDER BY id DESC LIMIT ?",
            stack,
            options.app,
            limit,
          );
    return rows.map(toDeployment);
  }

  deployedRevision(stack: string, app: string): DeploymentRecord | undefined {
    const row = this.#sql.get(
      "SELECT * FROM deployments WHERE stack = ? AND app = ? AND status = 'succeeded' AND strategy != 'ab' ORDER BY id DESC LIMIT 1",
      stack,
      app,
    );
    return row && toDeployment(row);
  }

  recordDeploymentStep(step: DeploymentStep): void {
    oneOf(stepStatuses, step.status, "deployment step status");
    const { secrets } = this.#sql;
    this.#sql.atomic(() => {
      const deployment = this.#deployment(step.deploymentId);
      // the update keeps the row's id, so steps stay in the order they were first recorded
      this.#sql.run(
        `INSERT INTO deployment_steps (deployment_id, instance, batch, phase, status, release_id, log, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (deployment_id, instance, batch, phase) DO UPDATE SET status = excluded.status,
           release_id = excluded.release_id, log = excluded.log, started_at = excluded.started_at,
           finished_at = excluded.finished_at`,
        step.deploymentId,
        step.instance,
        step.batch,
        step.phase,
        step.status,
        scrubbedText(step.release, secrets) ?? null,
        scrubbedText(step.log, secrets) ?? null,
        step.startedAt,
        step.finishedAt ?? null,
      );
      const { instance, batch, phase, status, startedAt, finishedAt } = step;
      const release = scrubbedText(step.release, secrets);
      this.#sql.feed({
        stack: deployment.stack,
        kind: "step",
        subject: `deployment:${deployment.id}`,
        data: { instance, batch, phase, status, release, startedAt, finishedAt },
      });
    });
  }

  claimMigration(id: number, instance: string): "claimed" | "done" | "running" | "none" {
    return this.#sql.atomic(() => {
      const deployment = this.#deployment(id);
      // one UPDATE guarded by the state: of two callers (or processes) only one changes the row
      const claimed = this.#sql.run(
        "UPDATE deployments SET migration = 'running', migration_instance = ? WHERE id = ? AND migration = 'pending'",
        instance,
        id,
      );
      if (Number(claimed.changes) === 1) return "claimed";
      const { migration } = this.#deployment(id);
      if (migration === "failed") {
        throw new GalleyError(
          "STATE_INVALID",
          `${this.#sql.file}: the migration of deployment ${id} (${deployment.app} in stack ${deployment.stack}) failed`,
          {
            hint: "deploy again (a new deployment migrates afresh), or reset the migration once the database is checked",
          },
        );
      }
      // not pending after the guarded update: done, none, or running (claimed by someone else)
      return migration === "done" || migration === "none" ? migration : "running";
    });
  }

  finishMigration(id: number, status: "done" | "failed"): DeploymentRecord {
    oneOf(["done", "failed"], status, "migration end state");
    return this.#sql.atomic(() => {
      const deployment = this.#deployment(id);
      if (deployment.migration === status) return deployment;
      if (deployment.migration !== "running") {
        throw new GalleyError(
          "STATE_INVALID",
          `${this.#sql.file}: the migration of deployment ${id} is ${deployment.migration}, not running: it cannot end ${status}`,
          { hint: "claim the migration (claimMigration) before running it" },
        );
      }
      this.#sql.run("UPDATE deployments SET migration = ? WHERE id = ?", status, id);
      return this.#deployment(id);
    });
  }

  resetMigration(id: number, to: "pending" | "done"): DeploymentRecord {
    oneOf(["pending", "done"], to, "migration reset state");
    return this.#sql.atomic(() => {
      const deployment = this.#deployment(id);
      if (deployment.migration === "none") {
        throw new GalleyError(
          "STATE_INVALID",
          `${this.#sql.file}: deployment ${id} (${deployment.app} in stack ${deployment.stack}) has no migration to reset`,
          { hint: "only a deployment of an app with a migrate step has a migration" },
        );
      }
      // re-armed, nobody holds it; done, the instance that ran it stays recorded
      this.#sql.run(
        "UPDATE deployments SET migration = ?, migration_instance = CASE WHEN ? = 'pending' THEN NULL ELSE migration_instance END WHERE id = ?",
        to,
        to,
        id,
      );
      return this.#deployment(id);
    });
  }

  /** The deployment `id` as it is now, and its feed entry (its status changed). */
  #changed(id: number): DeploymentRecord {
    const deployment = this.#deployment(id);
    const { app, status, strategy, revision, requested, rollbackOf } = deployment;
    this.#sql.feed({
      stack: deployment.stack,
      kind: "deployment",
      subject: `deployment:${id}`,
      data: { id, app, status, strategy, revision, requested, rollbackOf },
    });
    return deployment;
  }

  /** The deployment `id`; a clear error when there is none. */
  #deployment(id: number): DeploymentRecord {
    const row = this.#sql.get("SELECT * FROM deployments WHERE id = ?", id);
    if (!row) {
      throw new GalleyError("STATE_INVALID", `${this.#sql.file}: no deployment ${id}`, {
        hint: "galley deployments STACK lists the stack's deployments",
      });
    }
    return toDeployment(row);
  }

  #ended(deployment: DeploymentRecord, what: string): GalleyError {
    return new GalleyError(
      "STATE_INVALID",
      `${this.#sql.file}: deployment ${deployment.id} (${deployment.app} in stack ${deployment.stack}) ended ${deployment.status}: it cannot be ${what}`,
      { hint: "start a new deployment (a rollback repeats an older one's parameters)" },
    );
  }
}

/** A `deployments` row as a record; optional fields left out when not recorded. */
export function toDeployment(row: Row): DeploymentRecord {
  const bundle = optText(row.bundle);
  const rollbackOf = optNumber(row.rollback_of);
  const migrationInstance = optText(row.migration_instance);
  const note = optText(row.note);
  return {
    id: number(row.id),
    stack: text(row.stack),
    app: text(row.app),
    revision: text(row.revision),
    requested: text(row.requested),
    ...(bundle === undefined ? {} : { bundle }),
    attributes: JSON.parse(text(row.attributes)) as Record<string, unknown>,
    strategy: text(row.strategy),
    params: JSON.parse(text(row.params)) as Record<string, unknown>,
    user: text(row.requested_by),
    ...(rollbackOf === undefined ? {} : { rollbackOf }),
    status: text(row.status) as DeploymentStatus,
    migration: text(row.migration) as MigrationState,
    ...(migrationInstance === undefined ? {} : { migrationInstance }),
    ...(note === undefined ? {} : { note }),
    createdAt: text(row.created_at),
    startedAt: optText(row.started_at),
    finishedAt: optText(row.finished_at),
  };
}

/** A `deployment_steps` row as a step; optional fields left out when not recorded. */
export function toStep(row: Row): DeploymentStep {
  const release = optText(row.release_id);
  const log = optText(row.log);
  const finishedAt = optText(row.finished_at);
  return {
    deploymentId: number(row.deployment_id),
    instance: text(row.instance),
    batch: number(row.batch),
    phase: text(row.phase),
    status: text(row.status) as DeploymentStep["status"],
    ...(release === undefined ? {} : { release }),
    ...(log === undefined ? {} : { log }),
    startedAt: text(row.started_at),
    ...(finishedAt === undefined ? {} : { finishedAt }),
  };
}
