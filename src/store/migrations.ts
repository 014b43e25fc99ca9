import type { DatabaseSync } from "node:sqlite";
import { GalleyError } from "../core/errors.ts";

/** One schema migration: applied once, in its own transaction, in version order. */
export interface Migration {
  version: number;
  description: string;
  sql: string;
}

// Append only: never edit a migration that has shipped, add the next version instead.
// Statuses are checked in code, not with CHECK constraints, so a new status needs no table rebuild.
/** The store's schema, as an ordered list of migrations. */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    description: "stacks, stack states, instances, status history, events and outcomes",
    sql: `
      CREATE TABLE stacks (
        name TEXT PRIMARY KEY,
        content TEXT NOT NULL,
        applied_at TEXT NOT NULL
      ) STRICT;
      CREATE TABLE stack_states (
        stack TEXT NOT NULL,
        version INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (stack, version)
      ) STRICT;
      CREATE TABLE instances (
        stack TEXT NOT NULL,
        name TEXT NOT NULL,
        layers TEXT NOT NULL,
        provider TEXT NOT NULL,
        address TEXT,
        hostname TEXT,
        status TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (stack, name)
      ) STRICT;
      CREATE TABLE instance_status_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stack TEXT NOT NULL,
        instance TEXT NOT NULL,
        from_status TEXT,
        to_status TEXT NOT NULL,
        at TEXT NOT NULL,
        reason TEXT NOT NULL,
        FOREIGN KEY (stack, instance) REFERENCES instances (stack, name) ON DELETE CASCADE
      ) STRICT;
      CREATE INDEX instance_status_history_instance ON instance_status_history (stack, instance, id);
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stack TEXT NOT NULL,
        kind TEXT NOT NULL,
        args TEXT NOT NULL,
        state_version INTEGER,
        status TEXT NOT NULL,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
      ) STRICT;
      CREATE INDEX events_stack ON events (stack, id);
      CREATE TABLE event_outcomes (
        event_id INTEGER NOT NULL REFERENCES events (id) ON DELETE CASCADE,
        instance TEXT NOT NULL,
        status TEXT NOT NULL,
        state_version INTEGER,
        report TEXT,
        log TEXT NOT NULL,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        PRIMARY KEY (event_id, instance)
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: "the prepared run's bundle id of every event and per-instance outcome",
    sql: `
      ALTER TABLE events ADD COLUMN bundle TEXT;
      ALTER TABLE event_outcomes ADD COLUMN bundle TEXT;
    `,
  },
  {
    version: 3,
    description: "deployments, their steps and migration lock; instances in or out of service",
    sql: `
      ALTER TABLE instances ADD COLUMN in_service INTEGER NOT NULL DEFAULT 1;
      CREATE TABLE deployments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stack TEXT NOT NULL,
        app TEXT NOT NULL,
        revision TEXT NOT NULL,
        requested TEXT NOT NULL,
        bundle TEXT,
        attributes TEXT NOT NULL,
        strategy TEXT NOT NULL,
        params TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        rollback_of INTEGER REFERENCES deployments (id),
        status TEXT NOT NULL,
        migration TEXT NOT NULL,
        migration_instance TEXT,
        note TEXT,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
      ) STRICT;
      CREATE INDEX deployments_stack ON deployments (stack, id);
      CREATE INDEX deployments_app ON deployments (stack, app, id);
      CREATE TABLE deployment_steps (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        deployment_id INTEGER NOT NULL REFERENCES deployments (id) ON DELETE CASCADE,
        instance TEXT NOT NULL,
        batch INTEGER NOT NULL,
        phase TEXT NOT NULL,
        status TEXT NOT NULL,
        release_id TEXT,
        log TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        UNIQUE (deployment_id, instance, batch, phase)
      ) STRICT;
    `,
  },
  {
    version: 4,
    description: "instances' load-balancer weight (an A/B deployment's split)",
    sql: `
      ALTER TABLE instances ADD COLUMN weight INTEGER NOT NULL DEFAULT 100;
    `,
  },
  {
    version: 5,
    description:
      "the server's admin tokens, agent enrollments, agents, their runs and metrics, the audit log, leases",
    sql: `
      CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        grants TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE,
        expires_at TEXT,
        created_at TEXT NOT NULL,
        last_used_at TEXT,
        revoked_at TEXT
      ) STRICT;
      CREATE TABLE enrollments (
        hash TEXT PRIMARY KEY,
        stack TEXT NOT NULL,
        instance TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        used_at TEXT
      ) STRICT;
      CREATE INDEX enrollments_instance ON enrollments (stack, instance);
      CREATE TABLE agents (
        stack TEXT NOT NULL,
        instance TEXT NOT NULL,
        public_key TEXT NOT NULL,
        generation INTEGER NOT NULL,
        enrolled_at TEXT NOT NULL,
        last_seen_at TEXT,
        PRIMARY KEY (stack, instance)
      ) STRICT;
      CREATE TABLE agent_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stack TEXT NOT NULL,
        instance TEXT NOT NULL,
        generation INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        mode TEXT NOT NULL,
        bundle TEXT,
        status TEXT NOT NULL,
        changed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        report TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT NOT NULL,
        received_at TEXT NOT NULL,
        UNIQUE (stack, instance, generation, seq)
      ) STRICT;
      CREATE INDEX agent_runs_instance ON agent_runs (stack, instance, id);
      CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        stack TEXT NOT NULL,
        instance TEXT NOT NULL,
        at TEXT NOT NULL,
        cpu REAL NOT NULL,
        memory REAL NOT NULL,
        load REAL NOT NULL
      ) STRICT;
      CREATE INDEX metrics_stack ON metrics (stack, at);
      CREATE INDEX metrics_at ON metrics (at);
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        stack TEXT,
        target TEXT,
        outcome TEXT NOT NULL,
        reason TEXT,
        detail TEXT
      ) STRICT;
      CREATE INDEX audit_stack ON audit (stack, id);
      CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 6,
    description: "the feed (what happens, in order), the server's users and web sessions",
    sql: `
      CREATE TABLE feed (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        stack TEXT NOT NULL,
        kind TEXT NOT NULL,
        subject TEXT,
        data TEXT NOT NULL
      ) STRICT;
      CREATE INDEX feed_stack ON feed (stack, id);
      CREATE INDEX feed_subject ON feed (subject, kind, id, stack);
      CREATE INDEX feed_subject_all ON feed (subject, id, kind, stack);
      CREATE TABLE users (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        grants TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        last_login_at TEXT
      ) STRICT;
      CREATE TABLE sessions (
        hash TEXT PRIMARY KEY,
        actor_kind TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        csrf TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL
      ) STRICT;
      CREATE INDEX sessions_actor ON sessions (actor_kind, actor_name);
      CREATE INDEX sessions_expiry ON sessions (expires_at);
      CREATE INDEX event_outcomes_instance ON event_outcomes (instance, event_id);
    `,
  },
];

/** The schema version this code writes. */
export const schemaVersion = migrations.at(-1)?.version ?? 0;

/**
 * Brings the database at `file` up to `list`'s last version, one transaction per migration.
 * Refuses a database whose schema is newer than `list` knows. Returns the versions it applied.
 */
export function migrate(db: DatabaseSync, file: string, list: readonly Migration[] = migrations): number[] {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
  );
  const known = list.at(-1)?.version ?? 0;
  const applied: number[] = [];
  for (const migration of list) {
    // BEGIN IMMEDIATE takes the write lock first, so two processes opening a new file cannot both migrate
    db.exec("BEGIN IMMEDIATE");
    try {
      const current = currentVersion(db);
      if (current > known) throw newerSchema(file, current, known);
      if (current >= migration.version) {
        db.exec("COMMIT");
        continue;
      }
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(
        migration.version,
        new Date().toISOString(),
      );
      db.exec("COMMIT");
      applied.push(migration.version);
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    }
  }
  // an empty list still refuses a newer database
  const current = currentVersion(db);
  if (current > known) throw newerSchema(file, current, known);
  return applied;
}

/** The schema version recorded in the database (0 for a new one). */
export function currentVersion(db: DatabaseSync): number {
  const row = db.prepare("SELECT max(version) AS version FROM schema_version").get();
  return typeof row?.version === "number" ? row.version : 0;
}

function newerSchema(file: string, current: number, known: number): GalleyError {
  return new GalleyError(
    "STATE_INVALID",
    `${file}: the store's schema is version ${current}, newer than this Galley knows (${known})`,
    { hint: "a newer Galley wrote this database: upgrade Galley (an older one must not change it)" },
  );
}
