import * as v from "valibot";
import type { Guard, GuardFunction, Notification } from "./catalog.ts";
import { described } from "./resource.ts";

/** What declaring a resource returns: usable wherever a resource id string is. */
export class ResourceRef {
  readonly id: string;
  constructor(id: string) {
    this.id = id;
  }
  toString(): string {
    return this.id;
  }
  toJSON(): string {
    return this.id;
  }
}

const ref = v.pipe(
  v.union([v.pipe(v.string(), v.minLength(1)), v.instance(ResourceRef)]),
  v.description('a resource id like "service[nginx]", or the handle a declaration returned'),
  v.transform(String),
);

const refs = v.pipe(
  v.union([ref, v.array(ref)]),
  v.transform((value) => (Array.isArray(value) ? value : [value])),
);

const notification = v.strictObject({
  action: described(v.pipe(v.string(), v.minLength(1)), "the action to run on the target"),
  resource: ref,
  timing: v.optional(
    described(v.picklist(["immediate", "delayed"]), "now, or once at the end of the run"),
    "delayed",
  ),
});

const notifications = v.pipe(
  v.union([notification, v.array(notification)]),
  v.transform((value) => (Array.isArray(value) ? value : [value])),
);

const guard = v.pipe(
  v.union([
    v.pipe(v.string(), v.minLength(1)),
    v.pipe(v.array(v.string()), v.minLength(1)),
    v.custom<GuardFunction>(
      (value) => typeof value === "function",
      "a function ({ host, facts }) => boolean",
    ),
  ]),
  v.description("a shell command (exit 0 = true), an argv list, or a function ({ host, facts }) => boolean"),
  v.transform((value): Guard => (typeof value === "function" ? { fn: value } : { command: value })),
);

/** The properties every resource type accepts, handled by the engine. */
export const commonSchema = v.strictObject({
  action: v.optional(
    described(
      v.union([
        v.pipe(v.string(), v.minLength(1)),
        v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1)),
      ]),
      "the action, or actions in order; the type's first action by default; `nothing` does nothing unless notified",
    ),
  ),
  notifies: v.optional(
    described(
      notifications,
      "{ action, resource, timing }: run an action on another resource when this one changes",
    ),
  ),
  subscribes: v.optional(
    described(
      notifications,
      "{ action, resource, timing }: run an action on this resource when that one changes",
    ),
  ),
  onlyIf: v.optional(described(guard, "converge only when this guard is true")),
  notIf: v.optional(described(guard, "converge only when this guard is false")),
  requires: v.optional(
    described(refs, "resources that must converge first; this one is skipped if they fail"),
  ),
  before: v.optional(described(refs, "resources that must converge after this one")),
  ignoreFailure: v.optional(
    described(v.boolean(), "a failure is reported but does not fail the run nor skip dependents"),
    false,
  ),
  retries: v.optional(
    described(v.pipe(v.number(), v.integer(), v.minValue(0)), "how many times to retry a failed action"),
    0,
  ),
  retryDelay: v.optional(described(v.pipe(v.number(), v.minValue(0)), "seconds between retries"), 2),
  sensitive: v.optional(
    described(v.boolean(), "hide this resource's values from logs, reports and diffs"),
    false,
  ),
});

export type CommonProps = v.InferOutput<typeof commonSchema>;
export type CommonInput = v.InferInput<typeof commonSchema>;

export const commonKeys: ReadonlySet<string> = new Set(Object.keys(commonSchema.entries));

/** `subscribes` turned around: the notification as its source would send it. */
export function subscriptionAsNotification(
  subscription: { action: string; resource: string; timing: "immediate" | "delayed" },
  subscriber: string,
): { source: string; notification: Notification } {
  return {
    source: subscription.resource,
    notification: { action: subscription.action, target: subscriber, timing: subscription.timing },
  };
}
