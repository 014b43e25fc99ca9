import { GalleyError } from "../core/errors.ts";
import { redacted } from "../core/report.ts";
import { processSecrets, type Secrets } from "../core/secrets.ts";
import type {
  EventRecord,
  EventStatus,
  InstanceOutcome,
  InstanceRecord,
  InstanceStatus,
  StoredStack,
} from "./store.ts";

// How records become columns and back: values go in as JSON scrubbed of secrets, rows come out typed.

/** A row as node:sqlite returns it. */
export type Row = Record<string, unknown>;

/**
 * `value` as JSON text with every secret of `secrets` (default: the process registry) replaced by
 * the redaction marker: in strings, object keys and numbers. Always valid JSON, never holding one.
 */
export function scrubbedJson(value: unknown, secrets: Secrets = processSecrets): string {
  // the JSON round trip first turns dates (toJSON) and undefined properties into what would be stored anyway
  const plain = value === undefined ? null : (JSON.parse(JSON.stringify(value)) as unknown);
  const text = JSON.stringify(scrubValue(plain, secrets));
  // a secret spanning JSON syntax (quotes, commas) survives the walk: the text scrub catches it
  const scrubbed = secrets.scrub(text);
  if (scrubbed === text) return text;
  try {
    JSON.parse(scrubbed);
    return scrubbed;
  } catch {
    return JSON.stringify(redacted);
  }
}

function scrubValue(value: unknown, secrets: Secrets): unknown {
  if (typeof value === "string") return secrets.scrub(value);
  if (typeof value === "number") return secrets.scrub(String(value)) === String(value) ? value : redacted;
  if (Array.isArray(value)) return value.map((item) => scrubValue(item, secrets));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [secrets.scrub(key), scrubValue(item, secrets)]),
    );
  }
  return value;
}

/** `text` scrubbed of the secrets of `secrets` (default: the process registry), undefined kept. */
export function scrubbedText(
  text: string | undefined,
  secrets: Secrets = processSecrets,
): string | undefined {
  return text === undefined ? undefined : secrets.scrub(text);
}

/** A `stacks` row as a record. */
export function toStack(row: Row): StoredStack {
  return { name: text(row.name), content: JSON.parse(text(row.content)), appliedAt: text(row.applied_at) };
}

/** An `instances` row as a record. */
export function toInstance(row: Row): InstanceRecord {
  return {
    stack: text(row.stack),
    name: text(row.name),
    layers: JSON.parse(text(row.layers)) as string[],
    provider: text(row.provider),
    address: optText(row.address),
    hostname: optText(row.hostname),
    status: text(row.status) as InstanceStatus,
    inService: number(row.in_service) !== 0,
    weight: row.weight === undefined || row.weight === null ? 100 : number(row.weight),
    updatedAt: text(row.updated_at),
  };
}

/** An `events` row as a record. */
export function toEvent(row: Row): EventRecord {
  return {
    id: number(row.id),
    stack: text(row.stack),
    kind: text(row.kind) as EventRecord["kind"],
    args: JSON.parse(text(row.args)),
    stateVersion: optNumber(row.state_version),
    ...bundleOf(row),
    status: text(row.status) as EventStatus,
    createdAt: text(row.created_at),
    startedAt: optText(row.started_at),
    finishedAt: optText(row.finished_at),
  };
}

/** An `event_outcomes` row as a record. */
export function toOutcome(row: Row): InstanceOutcome {
  const report = optText(row.report);
  return {
    eventId: number(row.event_id),
    instance: text(row.instance),
    status: text(row.status) as InstanceOutcome["status"],
    stateVersion: optNumber(row.state_version),
    ...bundleOf(row),
    report: report === undefined ? undefined : JSON.parse(report),
    log: text(row.log),
    startedAt: text(row.started_at),
    finishedAt: optText(row.finished_at),
  };
}

// the bundle id, left out when none was recorded (events older than prepared runs)
function bundleOf(row: Row): { bundle?: string } {
  const bundle = optText(row.bundle);
  return bundle === undefined ? {} : { bundle };
}

/** A column that is never NULL, as text. */
export function text(value: unknown): string {
  return String(value);
}

/** A nullable column as text, NULL as undefined. */
export function optText(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

/** A column that is never NULL, as a number. */
export function number(value: unknown): number {
  return Number(value);
}

/** A nullable column as a number, NULL as undefined. */
export function optNumber(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : Number(value);
}

/** Now, as the store records times: ISO 8601 in UTC. */
export function now(): string {
  return new Date().toISOString();
}

/** Refuses a value outside `allowed` (a caller's typo, or a status from a newer Galley). */
export function oneOf(allowed: readonly string[], value: string, what: string): void {
  if (allowed.includes(value)) return;
  throw new GalleyError("STATE_INVALID", `unknown ${what} ${JSON.stringify(value)}`, {
    hint: `one of: ${allowed.join(", ")}`,
  });
}
