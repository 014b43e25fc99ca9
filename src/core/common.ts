import { z } from "zod";
import type { Guard, GuardFunction, Notification } from "./catalog.ts";

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

const ref = z
  .union([z.string().min(1), z.instanceof(ResourceRef)])
  .transform(String)
  .describe('a resource id like "service[nginx]", or the handle a declaration returned');

const refs = z.union([ref, z.array(ref)]).transform((value) => (Array.isArray(value) ? value : [value]));

const notification = z.strictObject({
  action: z.string().min(1).describe("the action to run on the target"),
  resource: ref,
  timing: z.enum(["immediate", "delayed"]).default("delayed").describe("now, or once at the end of the run"),
});

const notifications = z
  .union([notification, z.array(notification)])
  .transform((value) => (Array.isArray(value) ? value : [value]));

const guard = z
  .union([
    z.string().min(1),
    z.array(z.string()).min(1),
    z.custom<GuardFunction>(
      (value) => typeof value === "function",
      "a function ({ host, facts }) => boolean",
    ),
  ])
  .transform((value): Guard => (typeof value === "function" ? { fn: value } : { command: value }))
  .describe("a shell command (exit 0 = true), an argv list, or a function ({ host, facts }) => boolean");

/** The properties every resource type accepts, handled by the engine. */
export const commonSchema = z.strictObject({
  action: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .optional()
    .describe(
      "the action, or actions in order; the type's first action by default; `nothing` does nothing unless notified",
    ),
  notifies: notifications
    .optional()
    .describe("{ action, resource, timing }: run an action on another resource when this one changes"),
  subscribes: notifications
    .optional()
    .describe("{ action, resource, timing }: run an action on this resource when that one changes"),
  onlyIf: guard.optional().describe("converge only when this guard is true"),
  notIf: guard.optional().describe("converge only when this guard is false"),
  requires: refs.optional().describe("resources that must converge first; this one is skipped if they fail"),
  before: refs.optional().describe("resources that must converge after this one"),
  ignoreFailure: z
    .boolean()
    .default(false)
    .describe("a failure is reported but does not fail the run nor skip dependents"),
  retries: z.number().int().min(0).default(0).describe("how many times to retry a failed action"),
  retryDelay: z.number().min(0).default(2).describe("seconds between retries"),
  sensitive: z.boolean().default(false).describe("hide this resource's values from logs, reports and diffs"),
});

export type CommonProps = z.output<typeof commonSchema>;
export type CommonInput = z.input<typeof commonSchema>;

export const commonKeys: ReadonlySet<string> = new Set(Object.keys(commonSchema.shape));

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
