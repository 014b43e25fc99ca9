import * as v from "valibot";
import type { Host } from "./host.ts";
import type { Secrets } from "./secrets.ts";

/** One property that differs between the host and the catalog. Empty list: in state. */
export interface Change {
  property: string;
  from?: unknown;
  to?: unknown;
  /** a unified diff of text content */
  diff?: string;
}

/** What compile gives a type so it can resolve cookbook files and templates into plain values. */
export interface CompileContext {
  /** the cookbook that declared the resource; undefined for a single recipe file */
  cookbook: string | undefined;
  /** absolute path of the declaring cookbook's folder, or of the recipe file's folder */
  baseDir: string;
  /** reads `files/<name>` or `templates/<name>` of the declaring cookbook */
  cookbookFile(kind: "files" | "templates", name: string): Promise<{ path: string; data: Uint8Array }>;
  /** lives for one compile: for work worth doing once per run, like compiling a template */
  cache: Map<string, unknown>;
}

/** A reference to another managed thing that the engine turns into an edge. */
export interface AutoRequire {
  /** a path: the nearest managed directory above it (or the same path, declared earlier) */
  path?: string;
  user?: string;
  group?: string;
}

/**
 * A resource type: read is side-effect free, diff is pure, apply changes the host.
 * One file per type in src/resources/, always in this order: schema, key, read, diff, apply.
 */
// biome-ignore lint/suspicious/noExplicitAny: a registry holds types of every property shape
export interface ResourceType<P = any, S = any, I = any> {
  type: string;
  description: string;
  /** the first one is the default action */
  actions: readonly string[];
  /** actions that act every time they run (restart, run): exempt from the idempotence check */
  imperative?: readonly string[];
  /** the type's own properties; the common ones (notifies, onlyIf…) are added by the engine */
  schema: PropertySchema<I, P>;
  /** the property that takes the resource name when it is not given, e.g. "path" */
  nameProperty?: string;
  /** properties that are always secret (a password hash): never in logs, reports, diffs or the store */
  sensitiveProperties?: readonly string[];
  /** a change may alter state outside the resource's own key (a package, a command) */
  broadEffects?: boolean;
  /** changes only its own path: the engine may apply it together with the other resources of its wave (see docs/engine.md, waves) */
  concurrent?: boolean;
  key(props: P): string;
  /** several resources may share a key (two commands alike): only ids must be unique */
  sharedKeys?: boolean;
  /** resolves cookbook files and templates into plain values; runs once at compile time */
  compile?(props: P, context: CompileContext): P | Promise<P>;
  autoRequires?(props: P): AutoRequire[];
  read(host: Host, props: P): Promise<S | undefined>;
  diff(current: S | undefined, desired: P, action: string): Change[];
  apply(host: Host, desired: P, action: string, current: S | undefined, context: ApplyContext): Promise<void>;
}

/** What the engine tells apply about the run. */
export interface ApplyContext {
  /** the host's state directory (backups, pending notifications) */
  stateDir: string;
  /** the resource is sensitive: keep no clear copy of its content anywhere (no backup) */
  sensitive?: boolean;
  /** the run's secret registry: content holding one of its secrets is kept nowhere either */
  secrets?: Secrets;
}

/**
 * Declares a resource type with its property types inferred from the schema: recipes get the
 * schema's input type (`mode: "0644"`), the engine its output type (`mode: 420`).
 *
 * @example export const file = defineResourceType<typeof schema, FileState>({ type: "file", schema, … });
 */
export function defineResourceType<Schema extends PropertySchema, S>(
  type: ResourceType<v.InferOutput<Schema>, S, v.InferInput<Schema>> & { schema: Schema },
): ResourceType<v.InferOutput<Schema>, S, v.InferInput<Schema>> {
  return type;
}

/** A type's property schema: a valibot object schema (strict: unknown properties are errors). */
// biome-ignore lint/suspicious/noExplicitAny: the default admits any property shape
export type PropertySchema<I = any, O = any> = v.GenericSchema<I, O> & {
  readonly entries: Readonly<Record<string, v.GenericSchema>>;
};

/**
 * `schema` with a description for `galley explain` and the docs. Docs show what recipes write,
 * the input before any transform, so the description goes in front of the first transform.
 */
export function described<S extends v.GenericSchema>(schema: S, text: string): S {
  const items = (schema as { pipe?: readonly { kind: string }[] }).pipe;
  const pipe = v.pipe as (...items: unknown[]) => S; // a description changes no type
  if (!items) return pipe(schema, v.description(text));
  const transform = items.findIndex((item) => item.kind === "transformation");
  const at = transform < 0 ? items.length : transform;
  return pipe(...items.slice(0, at), v.description(text), ...items.slice(at));
}

/** A file mode as a number (0o644) or an octal string ("0644", "755"). */
export function modeSchema(description = 'permission bits, as a number (0o644) or an octal string ("0644")') {
  return v.pipe(
    v.union([
      v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(0o7777)),
      v.pipe(v.string(), v.regex(/^0?[0-7]{3,4}$/, 'an octal mode like "0644"')),
    ]),
    v.description(description),
    v.transform((value) => (typeof value === "number" ? value : Number.parseInt(value, 8))),
  );
}

/** An absolute path; `description` for the docs. */
export function pathSchema(description = "absolute path") {
  return v.pipe(
    v.string(),
    v.check((value) => value.startsWith("/"), "must be an absolute path"),
    // the system calls would refuse it later, with a raw error and no recipe line
    v.check((value) => !value.includes("\0"), "must not contain a NUL byte"),
    v.description(description),
  );
}

/** Formats a mode for diffs and reports: 0o644 → "0644". */
export function formatMode(mode: number | undefined): string | undefined {
  return mode === undefined ? undefined : `0${mode.toString(8).padStart(3, "0")}`;
}

/** `{ key: value }` when value is defined, else `{}`: spreads cleanly under exactOptionalPropertyTypes. */
export function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
