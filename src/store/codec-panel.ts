import { GalleyError } from "../core/errors.ts";
import { number, oneOf, optText, type Row, text } from "./codec.ts";
import { isoTime } from "./codec-server.ts";
import {
  type FeedEntry,
  type FeedKind,
  type FeedQuery,
  feedKinds,
  type Grant,
  type SessionActor,
  type SessionRecord,
  type UserRecord,
} from "./store.ts";

// How the web panel's records (feed entries, users, web sessions) become columns and back.

/** The most entries one read of the feed returns, and how many when the query says nothing. */
export const feedLimit = { max: 5000, default: 500 } as const;

/** A `feed` row as an entry. */
export function toFeedEntry(row: Row): FeedEntry {
  return {
    id: number(row.id),
    at: text(row.at),
    stack: text(row.stack),
    kind: text(row.kind) as FeedKind,
    subject: optText(row.subject),
    data: JSON.parse(text(row.data)) as unknown,
  };
}

/** A `users` row as a record; optional fields left out when not recorded. */
export function toUser(row: Row): UserRecord {
  const lastLoginAt = optText(row.last_login_at);
  return {
    name: text(row.name),
    passwordHash: text(row.password_hash),
    grants: JSON.parse(text(row.grants)) as Grant[],
    createdAt: text(row.created_at),
    updatedAt: text(row.updated_at),
    ...(lastLoginAt === undefined ? {} : { lastLoginAt }),
  };
}

/** A `sessions` row as a record. */
export function toSession(row: Row): SessionRecord {
  const name = text(row.actor_name);
  const actor: SessionActor =
    text(row.actor_kind) === "user" ? { kind: "user", name } : { kind: "token", tokenId: name };
  return {
    hash: text(row.hash),
    actor,
    csrf: text(row.csrf),
    expiresAt: text(row.expires_at),
    createdAt: text(row.created_at),
    lastSeenAt: text(row.last_seen_at),
  };
}

/** A session's actor as its two columns (kind, name); a clear error for anything else. */
export function actorColumns(actor: SessionActor): [kind: string, name: string] {
  if (actor?.kind === "user" && typeof actor.name === "string" && actor.name !== "")
    return ["user", actor.name];
  if (actor?.kind === "token" && typeof actor.tokenId === "string" && actor.tokenId !== "")
    return ["token", actor.tokenId];
  throw new GalleyError(
    "STATE_INVALID",
    `a web session's actor ${JSON.stringify(actor)} is no user or token`,
    {
      hint: 'give { kind: "user", name } or { kind: "token", tokenId }',
    },
  );
}

/** `name` checked as a user name: 1–64 of letters, digits and `_.@-`. */
export function userName(name: string): string {
  if (typeof name === "string" && /^[A-Za-z0-9_.@-]{1,64}$/.test(name)) return name;
  throw new GalleyError("STATE_INVALID", `user name ${JSON.stringify(name)} is not allowed`, {
    hint: "1 to 64 letters, digits, '_', '.', '@' or '-'",
  });
}

/** `hash` checked as a password hash (`scrypt$N$r$p$salt$hash`), so a password is never stored by mistake. */
export function passwordHash(hash: string): string {
  if (typeof hash === "string" && /^scrypt\$\S+$/.test(hash)) return hash;
  throw new GalleyError("STATE_INVALID", "a user's password hash must be scrypt$N$r$p$salt$hash", {
    hint: "hash the password first (src/server/users.ts); the store never keeps a password",
  });
}

/** The WHERE clause and its parameters of a feed query; undefined when it matches nothing (an empty list). */
export function feedWhere(query: FeedQuery): { where: string; params: (string | number)[] } | undefined {
  const clauses: string[] = [];
  const params: (string | number)[] = [];
  if (query.stacks !== undefined) {
    if (query.stacks.length === 0) return undefined;
    // with a subject, its indexes narrow far more than the stack's: `+` keeps the planner off feed_stack
    const column = query.subject === undefined ? "stack" : "+stack";
    if (query.stacks.length === 1) {
      clauses.push(`${column} = ?`);
      params.push(query.stacks[0]!);
    } else {
      // any number of stacks, one statement: the list goes in as JSON
      clauses.push(`${column} IN (SELECT value FROM json_each(?))`);
      params.push(JSON.stringify(query.stacks));
    }
  }
  if (query.subject !== undefined) {
    clauses.push("subject = ?");
    params.push(query.subject);
  }
  if (query.kinds !== undefined) {
    for (const kind of query.kinds) oneOf(feedKinds, kind, "feed kind");
    const kinds = [...new Set(query.kinds)];
    if (kinds.length === 0) return undefined;
    // a placeholder each (at most 11 kinds): the planner sees how many, and `=` for one keeps the index order
    clauses.push(kinds.length === 1 ? "kind = ?" : `kind IN (${kinds.map(() => "?").join(", ")})`);
    params.push(...kinds);
  }
  if (query.after !== undefined) {
    clauses.push("id > ?");
    params.push(feedId(query.after, "after"));
  }
  if (query.before !== undefined) {
    clauses.push("id < ?");
    params.push(feedId(query.before, "before"));
  }
  return { where: clauses.length === 0 ? "" : `WHERE ${clauses.join(" AND ")}`, params };
}

/** `value` checked as a whole number of 0 or more (a feed id, an offset, a limit). */
export function feedId(value: number, what: string): number {
  if (Number.isSafeInteger(value) && value >= 0) return value;
  throw new GalleyError("STATE_INVALID", `feed ${what} ${String(value)} is not a whole number of 0 or more`, {
    hint: "feed ids, offsets and limits are whole numbers",
  });
}

/** A feed entry's time: the given one as ISO 8601, or now. */
export function feedTime(at: string | undefined): string {
  return at === undefined ? new Date().toISOString() : isoTime(at, "feed entry time");
}
