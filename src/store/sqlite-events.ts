import { GalleyError } from "../core/errors.ts";
import { now, oneOf, scrubbedJson, scrubbedText, toEvent, toOutcome } from "./codec.ts";
import type { SqlAccess } from "./sqlite-deployments.ts";
import {
  type EventDetail,
  type EventInput,
  type EventRecord,
  eventKinds,
  eventStatuses,
  type InstanceOutcome,
  outcomeStatuses,
} from "./store.ts";

// Lifecycle events and each instance's outcome on one node:sqlite connection, synchronous: the SQL
// behind the Store's event methods, beside sqlite-database.ts, which hands it its statements.

/** The Store's event methods, synchronous, on one connection. */
export class SqliteEvents {
  readonly #sql: SqlAccess;

  constructor(sql: SqlAccess) {
    this.#sql = sql;
  }

  createEvent(input: EventInput): EventRecord {
    oneOf(eventKinds, input.kind, "event kind");
    return this.#sql.atomic(() => {
      const result = this.#sql.run(
        "INSERT INTO events (stack, kind, args, state_version, status, created_at) VALUES (?, ?, ?, ?, 'queued', ?)",
        input.stack,
        input.kind,
        scrubbedJson(input.args ?? {}, this.#sql.secrets),
        input.stateVersion ?? null,
        now(),
      );
      return this.#eventChanged(Number(result.lastInsertRowid));
    });
  }

  startEvent(id: number): EventRecord {
    return this.#sql.atomic(() => {
      this.#event(id);
      this.#sql.run("UPDATE events SET status = 'running', started_at = ? WHERE id = ?", now(), id);
      return this.#eventChanged(id);
    });
  }

  finishEvent(id: number, status: "succeeded" | "failed" | "superseded", bundle?: string): EventRecord {
    oneOf(eventStatuses, status, "event status");
    return this.#sql.atomic(() => {
      this.#event(id);
      this.#sql.run(
        "UPDATE events SET status = ?, finished_at = ?, bundle = coalesce(?, bundle) WHERE id = ?",
        status,
        now(),
        bundle ?? null,
        id,
      );
      return this.#eventChanged(id);
    });
  }

  recordInstanceOutcome(outcome: InstanceOutcome): void {
    oneOf(outcomeStatuses, outcome.status, "outcome status");
    this.#sql.atomic(() => {
      const event = this.#event(outcome.eventId);
      this.#sql.run(
        `INSERT INTO event_outcomes (event_id, instance, status, state_version, bundle, report, log, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (event_id, instance) DO UPDATE SET status = excluded.status,
           state_version = excluded.state_version, bundle = excluded.bundle, report = excluded.report,
           log = excluded.log, started_at = excluded.started_at, finished_at = excluded.finished_at`,
        outcome.eventId,
        outcome.instance,
        outcome.status,
        outcome.stateVersion ?? null,
        outcome.bundle ?? null,
        outcome.report === undefined ? null : scrubbedJson(outcome.report, this.#sql.secrets),
        scrubbedText(outcome.log, this.#sql.secrets) ?? "",
        outcome.startedAt,
        outcome.finishedAt ?? null,
      );
      const { instance, status, startedAt, finishedAt } = outcome;
      this.#sql.feed({
        stack: event.stack,
        kind: "outcome",
        subject: `event:${event.id}`,
        data: { instance, status, startedAt, finishedAt },
      });
    });
  }

  listEvents(stack: string, options: { limit?: number } = {}): EventRecord[] {
    const limit = options.limit ?? 50;
    return this.#sql
      .all("SELECT * FROM events WHERE stack = ? ORDER BY id DESC LIMIT ?", stack, limit)
      .map(toEvent);
  }

  getEvent(id: number): EventDetail | undefined {
    const row = this.#sql.get("SELECT * FROM events WHERE id = ?", id);
    if (!row) return undefined;
    const outcomes = this.#sql.all("SELECT * FROM event_outcomes WHERE event_id = ? ORDER BY instance", id);
    return { ...toEvent(row), outcomes: outcomes.map(toOutcome) };
  }

  /** The event `id`; a clear error when there is none. */
  #event(id: number): EventRecord {
    const row = this.#sql.get("SELECT * FROM events WHERE id = ?", id);
    if (!row) {
      throw new GalleyError("STATE_INVALID", `${this.#sql.file}: no event ${id}`, {
        hint: "galley history STACK lists the stack's events",
      });
    }
    return toEvent(row);
  }

  /** The event `id` as it is now, and its feed entry. */
  #eventChanged(id: number): EventRecord {
    const event = this.#event(id);
    const { kind, status, stateVersion, bundle } = event;
    this.#sql.feed({
      stack: event.stack,
      kind: "event",
      subject: `event:${id}`,
      data: { id, kind, status, stateVersion, bundle },
    });
    return event;
  }
}
