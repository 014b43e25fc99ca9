import { GalleyError } from "../core/errors.ts";
import { now, type Row, toEvent, toOutcome } from "./codec.ts";
import { actorColumns, passwordHash, toSession, toUser, userName } from "./codec-panel.ts";
import { badHash, checkedGrants, isoTime } from "./codec-server.ts";
import type { SqlAccess } from "./sqlite-deployments.ts";
import type {
  Grant,
  InstanceOutcomeEntry,
  SessionActor,
  SessionInput,
  SessionRecord,
  UserInput,
  UserRecord,
} from "./store.ts";

// The web panel's tables on one node:sqlite connection, synchronous: the server's users, their web
// sessions, and an instance's outcomes across events (its reports).

/** The Store's user, session and instance-report methods, synchronous, on one connection. */
export class SqlitePanel {
  readonly #sql: SqlAccess;

  constructor(sql: SqlAccess) {
    this.#sql = sql;
  }

  createUser(input: UserInput): UserRecord {
    const name = userName(input.name);
    const hash = passwordHash(input.passwordHash);
    const grants = checkedGrants(input.grants);
    return this.#sql.atomic(() => {
      if (this.getUser(name)) {
        throw new GalleyError("STATE_INVALID", `${this.#sql.file}: a user ${name} already exists`, {
          hint: "choose another name, or change the user's password or grants",
        });
      }
      const at = now();
      this.#sql.run(
        "INSERT INTO users (name, password_hash, grants, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        name,
        hash,
        JSON.stringify(grants),
        at,
        at,
      );
      return this.#user(name);
    });
  }

  getUser(name: string): UserRecord | undefined {
    const row = this.#sql.get("SELECT * FROM users WHERE name = ?", name);
    return row && toUser(row);
  }

  listUsers(): UserRecord[] {
    return this.#sql.all("SELECT * FROM users ORDER BY name").map(toUser);
  }

  updateUser(
    name: string,
    change: { passwordHash?: string; grants?: Grant[]; lastLoginAt?: string },
  ): UserRecord {
    const hash = change.passwordHash === undefined ? null : passwordHash(change.passwordHash);
    const grants = change.grants === undefined ? null : JSON.stringify(checkedGrants(change.grants));
    const login = change.lastLoginAt === undefined ? null : isoTime(change.lastLoginAt, "login time");
    return this.#sql.atomic(() => {
      this.#user(name);
      this.#sql.run(
        `UPDATE users SET password_hash = coalesce(?, password_hash), grants = coalesce(?, grants),
           last_login_at = coalesce(?, last_login_at), updated_at = ? WHERE name = ?`,
        hash,
        grants,
        login,
        now(),
        name,
      );
      return this.#user(name);
    });
  }

  deleteUser(name: string): boolean {
    return this.#sql.atomic(() => {
      this.#sql.run("DELETE FROM sessions WHERE actor_kind = 'user' AND actor_name = ?", name);
      return Number(this.#sql.run("DELETE FROM users WHERE name = ?", name).changes) > 0;
    });
  }

  createSession(input: SessionInput): SessionRecord {
    if (typeof input.hash !== "string" || !/^[0-9a-f]{64}$/.test(input.hash)) throw badHash("web session");
    const [kind, name] = actorColumns(input.actor);
    const expiresAt = isoTime(input.expiresAt, "session expiry");
    if (typeof input.csrf !== "string" || input.csrf.length < 16) {
      throw new GalleyError("STATE_INVALID", "a web session's CSRF token must be 16 characters or more", {
        hint: "make it from random bytes (randomBytes(32).toString('base64url'))",
      });
    }
    return this.#sql.atomic(() => {
      const known =
        kind === "user"
          ? this.#sql.get("SELECT name FROM users WHERE name = ?", name)
          : this.#sql.get("SELECT id FROM tokens WHERE id = ?", name);
      if (!known) {
        throw new GalleyError(
          "STATE_INVALID",
          `${this.#sql.file}: no ${kind} ${name} to open a session for`,
          {
            hint: kind === "user" ? "galley user list shows the users" : "galley token list shows the tokens",
          },
        );
      }
      if (this.#sql.get("SELECT hash FROM sessions WHERE hash = ?", input.hash)) {
        throw new GalleyError(
          "STATE_INVALID",
          `${this.#sql.file}: a web session with this secret already exists`,
          {
            hint: "make a new secret (32 random bytes) for every session",
          },
        );
      }
      const at = now();
      this.#sql.run(
        `INSERT INTO sessions (hash, actor_kind, actor_name, csrf, expires_at, created_at, last_seen_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)`,
        input.hash,
        kind,
        name,
        input.csrf,
        expiresAt,
        at,
        at,
      );
      return toSession(this.#sql.get("SELECT * FROM sessions WHERE hash = ?", input.hash)!);
    });
  }

  sessionByHash(hash: string, at: string): SessionRecord | undefined {
    const row = this.#sql.get(
      "SELECT * FROM sessions WHERE hash = ? AND expires_at > ?",
      hash,
      isoTime(at, "session time"),
    );
    return row && toSession(row);
  }

  touchSession(hash: string, at: string, expiresAt: string): void {
    // a session deleted meanwhile (logged out) stays deleted
    this.#sql.run(
      "UPDATE sessions SET last_seen_at = ?, expires_at = ? WHERE hash = ?",
      isoTime(at, "session use time"),
      isoTime(expiresAt, "session expiry"),
      hash,
    );
  }

  deleteSession(hash: string): void {
    this.#sql.run("DELETE FROM sessions WHERE hash = ?", hash);
  }

  deleteSessionsOf(actor: SessionActor): number {
    const [kind, name] = actorColumns(actor);
    const deleted = this.#sql.run("DELETE FROM sessions WHERE actor_kind = ? AND actor_name = ?", kind, name);
    return Number(deleted.changes);
  }

  deleteExpiredSessions(at: string): number {
    const deleted = this.#sql.run("DELETE FROM sessions WHERE expires_at <= ?", isoTime(at, "session time"));
    return Number(deleted.changes);
  }

  listInstanceOutcomes(
    stack: string,
    instance: string,
    options: { limit?: number; before?: number } = {},
  ): InstanceOutcomeEntry[] {
    const rows = this.#sql.all(
      `SELECT o.* FROM event_outcomes o JOIN events e ON e.id = o.event_id
       WHERE o.instance = ? AND e.stack = ? AND o.event_id < ? ORDER BY o.event_id DESC LIMIT ?`,
      instance,
      stack,
      options.before ?? Number.MAX_SAFE_INTEGER,
      options.limit ?? 50,
    );
    return rows.map((row: Row) => {
      const event = this.#sql.get("SELECT * FROM events WHERE id = ?", Number(row.event_id));
      return { ...toOutcome(row), event: toEvent(event!) };
    });
  }

  #user(name: string): UserRecord {
    const user = this.getUser(name);
    if (!user) {
      throw new GalleyError("STATE_INVALID", `${this.#sql.file}: no user ${name}`, {
        hint: "galley user list shows the users",
      });
    }
    return user;
  }
}
