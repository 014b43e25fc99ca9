import * as path from "node:path";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { oneOf, scrubbedJson } from "./codec.ts";
import { feedId, feedLimit, feedTime, feedWhere, toFeedEntry } from "./codec-panel.ts";
import type { SqlAccess } from "./sqlite-deployments.ts";
import { type FeedEntry, type FeedInput, type FeedQuery, feedKinds } from "./store.ts";

// The feed on one node:sqlite connection, synchronous: appends, reads, counts and prunes; and the
// process's listeners of each database file, which hear of entries once they are committed.

/** The feed's retention: entries older than `ms` go, the newest `keep` stay whatever their age. */
export interface FeedRetention {
  ms: number;
  keep: number;
  /** prune on the first append of a connection and every this many appends after */
  every: number;
}

type Listener = (lastId: number) => void;

// every store object opened on one file in this process shares the file's listeners
const listeners = new Map<string, Set<Listener>>();

/** Adds `listener` to those of `file` (resolved); returns the function that removes it. */
export function watchFeedFile(file: string, listener: Listener): () => void {
  const key = path.resolve(file);
  let set = listeners.get(key);
  if (!set) {
    set = new Set();
    listeners.set(key, set);
  }
  set.add(listener);
  return () => {
    const current = listeners.get(key);
    current?.delete(listener);
    if (current?.size === 0) listeners.delete(key);
  };
}

/** Tells the listeners of `file` that entries up to `lastId` are committed, each in a microtask of its own. */
export function announceFeed(file: string, lastId: number): void {
  // after the commit, never inside it: a listener's error or store call cannot touch the transaction
  for (const listener of listeners.get(path.resolve(file)) ?? []) {
    queueMicrotask(() => {
      try {
        listener(lastId);
      } catch (error) {
        // one broken listener (a closed stream) must neither stop the others nor crash the server
        process.emitWarning(`a feed listener failed: ${errorMessage(error)}`, "GalleyFeedWarning");
      }
    });
  }
}

/** The Store's feed methods, synchronous, on one connection. */
export class SqliteFeed {
  readonly #sql: SqlAccess;
  readonly #retention: FeedRetention;
  readonly #appended: (id: number) => void;
  #appends = 0;

  /** `appended` hears of every id written, to announce it when the outermost transaction commits. */
  constructor(sql: SqlAccess, retention: FeedRetention, appended: (id: number) => void) {
    this.#sql = sql;
    this.#retention = retention;
    this.#appended = appended;
  }

  append(entries: readonly FeedInput[]): FeedEntry[] {
    return this.#sql.atomic(() => {
      const written = entries.map((entry) => this.insert(entry));
      this.#maybePrune();
      return written;
    });
  }

  /** Writes one entry; the caller holds a transaction (a state change and its entry commit together). */
  insert(input: FeedInput): FeedEntry {
    oneOf(feedKinds, input.kind, "feed kind");
    if (typeof input.stack !== "string" || input.stack === "") {
      throw new GalleyError(
        "STATE_INVALID",
        `a feed entry's stack ${JSON.stringify(input.stack)} is no stack name`,
        {
          hint: "every entry belongs to one stack",
        },
      );
    }
    const at = feedTime(input.at);
    const subject = input.subject === undefined ? null : this.#sql.secrets.scrub(input.subject);
    const data = scrubbedJson(input.data ?? {}, this.#sql.secrets);
    const result = this.#sql.run(
      "INSERT INTO feed (at, stack, kind, subject, data) VALUES (?, ?, ?, ?, ?)",
      at,
      input.stack,
      input.kind,
      subject,
      data,
    );
    const id = Number(result.lastInsertRowid);
    this.#appended(id);
    return {
      id,
      at,
      stack: input.stack,
      kind: input.kind,
      subject: subject ?? undefined,
      data: JSON.parse(data) as unknown,
    };
  }

  /** Writes one entry the store emits for its own change, pruning now and then like appends do. */
  emit(input: FeedInput): void {
    this.insert(input);
    this.#maybePrune();
  }

  read(query: FeedQuery): FeedEntry[] {
    const where = feedWhere(query);
    if (!where) return [];
    const limit = Math.min(feedId(query.limit ?? feedLimit.default, "limit"), feedLimit.max);
    const offset = feedId(query.offset ?? 0, "offset");
    if (query.order !== undefined) oneOf(["asc", "desc"], query.order, "feed order");
    const order = query.order === "desc" ? "DESC" : "ASC";
    return this.#sql
      .all(
        `SELECT * FROM feed ${where.where} ORDER BY id ${order} LIMIT ? OFFSET ?`,
        ...where.params,
        limit,
        offset,
      )
      .map(toFeedEntry);
  }

  count(query: FeedQuery): number {
    const where = feedWhere(query);
    if (!where) return 0;
    return Number(this.#sql.get(`SELECT count(*) AS n FROM feed ${where.where}`, ...where.params)?.n ?? 0);
  }

  lastId(): number {
    return Number(this.#sql.get("SELECT max(id) AS id FROM feed")?.id ?? 0);
  }

  prune(before: string, keep: number): number {
    const cutoff = feedTime(before);
    feedId(keep, "keep");
    return this.#sql.atomic(() => {
      // two cheap checks first (each one row of the rowid tree), as this runs every 100th append:
      // no more than `keep` ids in use, or the oldest entry young enough, and nothing goes
      const bounds = this.#sql.get(
        "SELECT (SELECT min(id) FROM feed) AS low, (SELECT max(id) FROM feed) AS high",
      );
      if (bounds?.low === null || bounds?.low === undefined) return 0;
      if (Number(bounds.high) - Number(bounds.low) + 1 <= keep) return 0;
      const oldest = this.#sql.get("SELECT at FROM feed ORDER BY id LIMIT 1");
      if (!oldest || String(oldest.at) >= cutoff) return 0;
      const kept =
        keep === 0
          ? undefined
          : this.#sql.get("SELECT id FROM feed ORDER BY id DESC LIMIT 1 OFFSET ?", keep - 1);
      // fewer entries than `keep`: every one stays
      if (keep !== 0 && !kept) return 0;
      const below = kept ? Number(kept.id) : Number.MAX_SAFE_INTEGER;
      return Number(this.#sql.run("DELETE FROM feed WHERE id < ? AND at < ?", below, cutoff).changes);
    });
  }

  #maybePrune(): void {
    if (this.#appends++ % this.#retention.every !== 0) return;
    this.prune(new Date(Date.now() - this.#retention.ms).toISOString(), this.#retention.keep);
  }
}
