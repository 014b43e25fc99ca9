import * as v from "valibot";
import { lastRunSchema } from "./stacks.ts";

// The shapes of what the web panel reads of stacks (GET /v1/overview, GET
// /v1/stacks/:stack/summary): validated responses and the OpenAPI document's schemas.

export const invalidSchema = v.object({ code: v.string(), message: v.string() });

export const eventSchema = v.object({
  id: v.number(),
  stack: v.string(),
  kind: v.string(),
  status: v.string(),
  stateVersion: v.optional(v.nullable(v.number())),
  createdAt: v.string(),
  startedAt: v.optional(v.string()),
  finishedAt: v.optional(v.string()),
});

export const deploymentSchema = v.object({
  id: v.number(),
  app: v.string(),
  revision: v.string(),
  requested: v.string(),
  strategy: v.string(),
  status: v.string(),
  user: v.string(),
  createdAt: v.string(),
  finishedAt: v.optional(v.string()),
});

export const scalingKinds = ["always", "time", "load"] as const;

export const instanceSchema = v.object({
  name: v.string(),
  layers: v.array(v.string()),
  /** false: not in the stack file (or the file does not load): known from the store only */
  declared: v.boolean(),
  status: v.string(),
  address: v.nullable(v.string()),
  transport: v.picklist(["ssh", "agent"]),
  provider: v.string(),
  scaling: v.picklist(scalingKinds),
  inService: v.boolean(),
  weight: v.number(),
  updatedAt: v.nullable(v.string()),
  agent: v.nullable(
    v.object({
      generation: v.number(),
      connected: v.boolean(),
      lastSeenAt: v.nullable(v.string()),
      lastRun: v.nullable(lastRunSchema),
    }),
  ),
});

export const layerSchema = v.object({
  name: v.string(),
  shortName: v.optional(v.string()),
  autoHealing: v.boolean(),
  loadBased: v.optional(v.unknown()),
  instances: v.array(v.string()),
});

export const abSchema = v.object({
  /** the A/B deployment under way */
  deployment: v.number(),
  revision: v.string(),
  requested: v.string(),
  /** A: the deployment the other instances run */
  base: v.nullable(v.number()),
  /** the instances that run B */
  instances: v.array(v.string()),
  share: v.nullable(v.string()),
  expected: v.nullable(v.string()),
  weights: v.record(v.string(), v.number()),
});

export const appSchema = v.object({
  name: v.string(),
  layers: v.array(v.string()),
  /** null: the app is known from its deployments only */
  source: v.nullable(
    v.object({
      type: v.string(),
      url: v.optional(v.string()),
      revision: v.optional(v.string()),
      sha256: v.optional(v.string()),
    }),
  ),
  deployed: v.nullable(v.unknown()),
  ab: v.nullable(abSchema),
});

/** GET /v1/stacks/:stack/summary. */
export const summarySchema = v.object({
  name: v.string(),
  file: v.string(),
  invalid: v.optional(invalidSchema),
  stateVersion: v.nullable(v.number()),
  layers: v.array(layerSchema),
  instances: v.array(instanceSchema),
  apps: v.array(appSchema),
  events: v.array(eventSchema),
  deployments: v.array(deploymentSchema),
});

/** One stack of GET /v1/overview. */
export const overviewStackSchema = v.object({
  name: v.string(),
  file: v.string(),
  invalid: v.optional(invalidSchema),
  stateVersion: v.nullable(v.number()),
  layers: v.array(v.object({ name: v.string(), instances: v.array(v.string()) })),
  counts: v.record(v.string(), v.number()),
  apps: v.array(
    v.object({
      name: v.string(),
      deployed: v.nullable(
        v.object({
          id: v.number(),
          revision: v.string(),
          requested: v.string(),
          status: v.string(),
          finishedAt: v.nullable(v.string()),
        }),
      ),
    }),
  ),
  events: v.array(eventSchema),
});

export type Summary = v.InferOutput<typeof summarySchema>;
export type InstanceJson = v.InferOutput<typeof instanceSchema>;
