import * as v from "valibot";
import { providerSchema } from "../providers/index.ts";

// The stack file (stacks/<name>.yaml): a deployment's whole configuration, OpsWorks-style. The
// schema is the one source for validation, for the JSON Schema editors use, and for the docs.

/** The lifecycle events a layer has recipes for, in the order an instance meets them. */
export const lifecycleEvents = ["setup", "configure", "deploy", "undeploy", "shutdown"] as const;
export type LifecycleEvent = (typeof lifecycleEvents)[number];

const name = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9-]{0,62}$/, "a name: lower-case letters, digits and dashes, starting with a letter"),
);
const attributes = v.optional(v.record(v.string(), v.unknown()), {});
const environment = v.optional(
  v.record(v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/)), v.string()),
  {},
);
const runList = v.optional(v.array(v.string()), []);

const layer = v.strictObject({
  name,
  short_name: v.optional(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,15}$/))),
  packages: v.optional(v.array(v.string()), []),
  recipes: v.optional(
    v.strictObject(
      Object.fromEntries(lifecycleEvents.map((event) => [event, runList])) as Record<
        LifecycleEvent,
        typeof runList
      >,
    ),
    {},
  ),
  attributes,
  environment,
  /** seconds the shutdown recipes may take before the host is stopped anyway (OpsWorks' default: 120) */
  shutdown_timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3600)), 120),
});

const weekday = v.picklist(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]);
const hours = v.array(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(23)));

const scaling = v.optional(
  v.variant("type", [
    v.strictObject({ type: v.literal("always") }),
    v.strictObject({ type: v.literal("time"), schedule: v.record(weekday, hours) }),
    v.strictObject({
      type: v.literal("load"),
      up: v.strictObject({
        cpu: v.optional(v.number()),
        memory: v.optional(v.number()),
        load: v.optional(v.number()),
      }),
      down: v.strictObject({
        cpu: v.optional(v.number()),
        memory: v.optional(v.number()),
        load: v.optional(v.number()),
      }),
    }),
  ]),
  { type: "always" },
);

// each instance provider declares its own settings (src/providers/)
const provider = providerSchema;

const instance = v.strictObject({
  name,
  layers: v.pipe(v.array(name), v.minLength(1, "an instance belongs to at least one layer")),
  provider: v.optional(provider, { type: "container" }),
  scaling,
  attributes,
});

const app = v.strictObject({
  name,
  layers: v.pipe(v.array(name), v.minLength(1, "an app is deployed to at least one layer")),
  source: v.variant("type", [
    v.strictObject({ type: v.literal("git"), url: v.string(), revision: v.optional(v.string(), "HEAD") }),
    v.strictObject({ type: v.literal("archive"), url: v.string(), sha256: v.optional(v.string()) }),
  ]),
  environment,
  domains: v.optional(v.array(v.string()), []),
  deploy: v.optional(v.record(v.string(), v.unknown()), {}),
});

/** The whole stack file. */
export const stackSchema = v.strictObject({
  name,
  attributes,
  /** a cookbooks.yaml (its kitchen's cookbooks/, locked) or a cookbooks folder, relative to the stack file */
  cookbooks: v.optional(v.string(), "../cookbooks.yaml"),
  layers: v.pipe(v.array(layer), v.minLength(1, "a stack has at least one layer")),
  instances: v.optional(v.array(instance), []),
  apps: v.optional(v.array(app), []),
});

export type StackFile = v.InferOutput<typeof stackSchema>;
export type Layer = StackFile["layers"][number];
export type Instance = StackFile["instances"][number];
export type App = StackFile["apps"][number];
