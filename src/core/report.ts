import type { CatalogResource, SourceLocation } from "./catalog.ts";
import type { Change, ResourceType } from "./resource.ts";

export type ResourceStatus = "changed" | "unchanged" | "failed" | "skipped" | "pending";

/** What a converge did to one resource. */
export interface ResourceReport {
  id: string;
  status: ResourceStatus;
  /** the actions that acted (or would, in a plan) */
  actions: string[];
  diff?: Change[];
  error?: { code?: string; message: string; hint?: string };
  /** why a resource was skipped */
  reason?: string;
  /** a failure that ignoreFailure let pass */
  ignored?: boolean;
  /** notifications delivered to this resource */
  notified?: { action: string; by: string; status: ResourceStatus | "kept" }[];
  durationMs: number;
  /** where it was declared; given for every resource that did not stay unchanged */
  source?: SourceLocation;
}

/** A notification carried between runs because it could not be delivered. */
export interface PendingNotification {
  target: string;
  action: string;
  /** the resources whose change sent it, comma-separated */
  by: string;
  /** when it was first queued (ISO time) */
  since: string;
}

/** What a converge did, resource by resource. */
export interface Report {
  /** interrupted: stopped by SIGINT or SIGTERM before its end */
  status: "ok" | "failed" | "interrupted";
  mode: "apply" | "plan";
  host: string;
  runList: string[];
  /** the prepared run's id: the bundle id of the cookbooks it ran (or `digest:…` for an unlocked kitchen) */
  bundle?: string;
  startedAt: string;
  durationMs: number;
  summary: {
    changed: number;
    unchanged: number;
    failed: number;
    skipped: number;
    pending: number;
    ignored: number;
  };
  resources: ResourceReport[];
  notifications: {
    /** delivered in this run that had been kept by an earlier run */
    fromPreviousRun: PendingNotification[];
    /** not delivered: kept under the state dir for the next run */
    kept: PendingNotification[];
    /** kept, but their target is no longer declared: reported once (`galley notifications drop`) */
    vanished?: PendingNotification[];
  };
  /** temp files an interrupted run left, removed at the start of this one */
  tempFilesRemoved?: string[];
}

export function summarize(resources: ResourceReport[]): Report["summary"] {
  const summary = { changed: 0, unchanged: 0, failed: 0, skipped: 0, pending: 0, ignored: 0 };
  for (const resource of resources) {
    if (resource.ignored) summary.ignored += 1;
    else summary[resource.status] += 1;
  }
  return summary;
}

const publicProperties = new Set(["ensure", "type", "mode", "owner", "group"]);
export const redacted = "(sensitive)";

/** Hides secret values: every value of a sensitive resource but its shape, and a type's secret properties always. */
export function redactChanges(resource: CatalogResource, type: ResourceType, changes: Change[]): Change[] {
  const secret = new Set(type.sensitiveProperties ?? []);
  return changes.map((change) => {
    if (!secret.has(change.property) && (!resource.sensitive || publicProperties.has(change.property)))
      return change;
    return {
      property: change.property,
      ...(change.from === undefined ? {} : { from: redacted }),
      ...(change.to === undefined ? {} : { to: redacted }),
    };
  });
}

/** The secret strings of a resource, to scrub from error messages. */
export function secretsOf(resource: CatalogResource, type: ResourceType): string[] {
  const secrets: string[] = [];
  const collect = (value: unknown) => {
    if (typeof value === "string" && value.length >= 4) secrets.push(value);
    else if (Array.isArray(value)) value.forEach(collect);
    else if (value && typeof value === "object") Object.values(value).forEach(collect);
  };
  for (const [key, value] of Object.entries(resource.props)) {
    if (resource.sensitive ? key !== type.nameProperty : type.sensitiveProperties?.includes(key))
      collect(value);
  }
  return secrets;
}

/** Replaces every secret in a text with a marker. */
export function scrub(text: string, secrets: string[]): string {
  let result = text;
  for (const secret of secrets) result = result.split(secret).join(redacted);
  return result;
}

/** A catalog resource with secret values hidden, for `galley compile --json`. */
export function redactResource(resource: CatalogResource, type: ResourceType): CatalogResource {
  const secret = new Set(type.sensitiveProperties ?? []);
  const props = Object.fromEntries(
    Object.entries(resource.props).map(([key, value]) => {
      const hide =
        secret.has(key) || (resource.sensitive && key !== type.nameProperty && !publicProperties.has(key));
      return [key, hide && value !== undefined ? redacted : value];
    }),
  );
  return { ...resource, props };
}
