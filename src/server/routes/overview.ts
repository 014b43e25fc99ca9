import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as v from "valibot";
import { GalleyError, isGalleyError } from "../../core/errors.ts";
import { abInstances, activeAb } from "../../deploy/ab.ts";
import { cookbooksDir } from "../../lifecycle/context.ts";
import { type Instance, instanceTransport, type StackFile } from "../../stacks/schema.ts";
import { loadStack } from "../../stacks/stack.ts";
import type { DeploymentRecord, EventRecord, InstanceRecord } from "../../store/store.ts";
import { can } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { servedStackNames } from "./served.ts";
import { servedStackFile, stackParams, withoutKitchenPath, withServedStack } from "./stacks.ts";

// What the web panel shows of stacks, read in one request each: every stack the caller may view
// at a glance (GET /v1/overview), and one stack with its layers, instances (status, transport,
// agent), apps (deployed revision, A/B) and last events and deployments (GET
// /v1/stacks/:stack/summary). A stack file that does not load is still summarized: `invalid`
// says why, and the rest is what the store knows (the stack as last applied, the instances'
// records). Nothing here is a secret: apps' sources lose their URLs' credentials and queries,
// and environments and attributes are not shown.

const invalidSchema = v.object({ code: v.string(), message: v.string() });

const eventSchema = v.object({
  id: v.number(),
  stack: v.string(),
  kind: v.string(),
  status: v.string(),
  stateVersion: v.optional(v.nullable(v.number())),
  createdAt: v.string(),
  startedAt: v.optional(v.string()),
  finishedAt: v.optional(v.string()),
});

const deploymentSchema = v.object({
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

const scalingKinds = ["always", "time", "load"] as const;

const instanceSchema = v.object({
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
      lastRun: v.nullable(
        v.object({
          seq: v.number(),
          kind: v.string(),
          mode: v.string(),
          status: v.string(),
          changed: v.number(),
          failed: v.number(),
          finishedAt: v.string(),
        }),
      ),
    }),
  ),
});

const layerSchema = v.object({
  name: v.string(),
  shortName: v.optional(v.string()),
  autoHealing: v.boolean(),
  loadBased: v.optional(v.unknown()),
  instances: v.array(v.string()),
});

const abSchema = v.object({
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

const appSchema = v.object({
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
const overviewStackSchema = v.object({
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

type Summary = v.InferOutput<typeof summarySchema>;
type InstanceJson = v.InferOutput<typeof instanceSchema>;

// The parts of a stack file the summary shows, read loosely: the stack as last applied (the
// store's copy) need not match today's schema to be shown.
const transportSchema = v.optional(v.picklist(["ssh", "agent"]));
const declaredSchema = v.object({
  layers: v.array(
    v.looseObject({
      name: v.string(),
      short_name: v.optional(v.string()),
      auto_healing: v.optional(v.boolean()),
      load_based: v.optional(v.unknown()),
      transport: transportSchema,
    }),
  ),
  instances: v.optional(
    v.array(
      v.looseObject({
        name: v.string(),
        layers: v.array(v.string()),
        provider: v.optional(v.looseObject({ type: v.string() })),
        transport: transportSchema,
        scaling: v.optional(v.looseObject({ type: v.picklist(scalingKinds) })),
      }),
    ),
    [],
  ),
  apps: v.optional(
    v.array(
      v.looseObject({
        name: v.string(),
        layers: v.array(v.string()),
        source: v.looseObject({
          type: v.string(),
          url: v.optional(v.string()),
          revision: v.optional(v.string()),
          sha256: v.optional(v.string()),
        }),
      }),
    ),
    [],
  ),
});

type Declared = v.InferOutput<typeof declaredSchema>;

/** A URL without what may be a credential: its user and password, its query and fragment. */
export function publicUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // scp-like git addresses (git@host:path) hold no secret; anything else unparsable is hidden
    return /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s?#]*$/.test(url) ? url : "(hidden)";
  }
  if (!["http:", "https:", "ssh:", "git:", "file:", "s3:"].includes(parsed.protocol)) return "(hidden)";
  parsed.username = "";
  parsed.password = "";
  parsed.search = "";
  parsed.hash = "";
  return parsed.toString();
}

/** The instance names of each stack the store has applied, in the store's order. */
type TakenNames = { stack: string; names: Set<string> }[];

async function takenNames(ctx: ServerContext): Promise<TakenNames> {
  const taken: TakenNames = [];
  for (const { name } of await ctx.store.listStacks())
    taken.push({ stack: name, names: new Set((await ctx.store.listInstances(name)).map((i) => i.name)) });
  return taken;
}

/**
 * The stack file, checked as the server opens a stack (openServedStack and openStack: its schema,
 * its cookbooks, no instance name of another stack, its name), without opening a store per stack:
 * `taken` is read once for every stack of the overview.
 */
async function loadServed(ctx: ServerContext, name: string, taken: TakenNames): Promise<StackFile> {
  const file = servedStackFile(ctx, name);
  const stack = await loadStack(file, { decrypt: false });
  for (const other of taken) {
    if (other.stack === stack.name) continue;
    const clash = stack.instances.find((instance) => other.names.has(instance.name));
    if (clash)
      throw new GalleyError(
        "STACK_INVALID",
        `${file}: instance ${clash.name} is also an instance of stack ${other.stack} in this kitchen`,
        {
          hint: "instance names are host names: give each stack's instances their own (galley stack clone renames them)",
        },
      );
  }
  cookbooksDir(path.resolve(file), stack);
  if (stack.name !== name)
    throw new GalleyError("STACK_INVALID", `stacks/${name}.yaml names its stack ${stack.name}`, {
      hint: `the server serves stacks/NAME.yaml as stack NAME: set name: ${name} (or rename the file)`,
    });
  return stack;
}

// an error may quote what the file holds: a line of it is enough to find the fault
function shortened(message: string): string {
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

/**
 * What the stack file (or, when it does not load, the store's copy) declares, and why it did not
 * load. One stack is opened as every route opens it; the overview's (`taken` given) are read
 * without a store each.
 */
async function declaration(
  ctx: ServerContext,
  name: string,
  taken?: TakenNames,
): Promise<{ declared: Declared | undefined; invalid?: { code: string; message: string } }> {
  const file = servedStackFile(ctx, name);
  const exists = await fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!exists)
    throw new GalleyError("NOT_FOUND", `the server has no stack ${name}`, {
      hint: "GET /v1/stacks lists them",
    });
  try {
    const stack =
      taken === undefined
        ? await withServedStack(ctx, name, { checkRecipes: false, decrypt: false }, async (c) => c.stack)
        : await loadServed(ctx, name, taken);
    return { declared: v.parse(declaredSchema, stack) };
  } catch (raw) {
    // messages name files relative to the kitchen
    const error = withoutKitchenPath(ctx, raw);
    if (!isGalleyError(error)) throw error;
    const applied = await ctx.store.getStack(name);
    const parsed = v.safeParse(declaredSchema, applied?.content);
    return {
      declared: parsed.success ? parsed.output : undefined,
      invalid: { code: error.code, message: shortened(error.message) },
    };
  }
}

async function agentsOf(ctx: ServerContext, stack: string): Promise<Map<string, InstanceJson["agent"]>> {
  const live = ctx.agents.connections().filter((a) => a.stack === stack);
  const agents = new Map<string, InstanceJson["agent"]>();
  for (const agent of await ctx.store.listAgents(stack)) {
    const connection = live.find((a) => a.instance === agent.instance && a.generation === agent.generation);
    const [run] = await ctx.store.listAgentRuns(stack, agent.instance, { limit: 1 });
    agents.set(agent.instance, {
      generation: agent.generation,
      connected: connection !== undefined,
      lastSeenAt: connection?.lastSeenAt ?? agent.lastSeenAt ?? null,
      lastRun: run
        ? {
            seq: run.seq,
            kind: run.kind,
            mode: run.mode,
            status: run.status,
            changed: run.changed,
            failed: run.failed,
            finishedAt: run.finishedAt,
          }
        : null,
    });
  }
  return agents;
}

function instanceJson(
  record: InstanceRecord | undefined,
  agent: InstanceJson["agent"] | undefined,
): Pick<InstanceJson, "status" | "address" | "inService" | "weight" | "updatedAt" | "agent"> {
  return {
    status: record?.status ?? "stopped",
    address: record?.address ?? null,
    inService: record?.inService ?? true,
    weight: record?.weight ?? 100,
    updatedAt: record?.updatedAt ?? null,
    agent: agent ?? null,
  };
}

/** The instances: the declared ones with what the store knows of each, then those only the store knows. */
function instancesOf(
  declared: Declared | undefined,
  records: InstanceRecord[],
  agents: Map<string, InstanceJson["agent"]>,
): InstanceJson[] {
  const byName = new Map(records.map((r) => [r.name, r]));
  const instances: InstanceJson[] = (declared?.instances ?? []).map((i) => ({
    name: i.name,
    layers: i.layers,
    declared: true,
    ...instanceJson(byName.get(i.name), agents.get(i.name)),
    transport: instanceTransport(declared as unknown as Pick<StackFile, "layers">, i as unknown as Instance),
    provider: i.provider?.type ?? "container",
    scaling: i.scaling?.type ?? "always",
  }));
  const named = new Set(instances.map((i) => i.name));
  for (const r of records) {
    if (named.has(r.name)) continue;
    instances.push({
      name: r.name,
      layers: r.layers,
      declared: false,
      ...instanceJson(r, agents.get(r.name)),
      // an enrolled agent is how such an instance was reached
      transport: agents.has(r.name) ? "agent" : "ssh",
      provider: r.provider,
      scaling: "always",
    });
  }
  return instances;
}

function layersOf(declared: Declared | undefined, instances: InstanceJson[]): Summary["layers"] {
  const layers: Summary["layers"] = (declared?.layers ?? []).map((l) => ({
    name: l.name,
    ...(l.short_name === undefined ? {} : { shortName: l.short_name }),
    autoHealing: l.auto_healing ?? false,
    ...(l.load_based === undefined ? {} : { loadBased: l.load_based }),
    instances: [],
  }));
  for (const instance of instances)
    for (const name of instance.layers) {
      let layer = layers.find((l) => l.name === name);
      if (!layer) {
        layer = { name, autoHealing: false, instances: [] };
        layers.push(layer);
      }
      layer.instances.push(instance.name);
    }
  return layers;
}

// a deployment id kept in a record's params ("12" or 12); null when it is none
function recordId(value: unknown): number | null {
  const id = typeof value === "string" || typeof value === "number" ? Number(value) : Number.NaN;
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

async function abOf(
  ctx: ServerContext,
  stack: string,
  app: string,
  instances: InstanceJson[],
  layers: string[],
): Promise<Summary["apps"][number]["ab"]> {
  const deployment = await activeAb(ctx.store, stack, app);
  if (!deployment) return null;
  const params = deployment.params as Record<string, unknown>;
  const weights: Record<string, number> = {};
  for (const i of instances)
    if (i.status === "online" && i.layers.some((l) => layers.includes(l))) weights[i.name] = i.weight;
  return {
    deployment: deployment.id,
    revision: deployment.revision,
    requested: deployment.requested,
    base: recordId(params.base),
    instances: abInstances(deployment),
    share: typeof params.share === "string" ? params.share : null,
    expected: typeof params.expected === "string" ? params.expected : null,
    weights,
  };
}

async function appsOf(
  ctx: ServerContext,
  stack: string,
  declared: Declared | undefined,
  instances: InstanceJson[],
  brief: boolean,
): Promise<Summary["apps"]> {
  const apps: { name: string; layers: string[]; source: Summary["apps"][number]["source"] }[] = (
    declared?.apps ?? []
  ).map((a) => ({
    name: a.name,
    layers: a.layers,
    source: {
      type: a.source.type,
      ...(a.source.url === undefined ? {} : { url: publicUrl(a.source.url) }),
      ...(a.source.revision === undefined ? {} : { revision: a.source.revision }),
      ...(a.source.sha256 === undefined ? {} : { sha256: a.source.sha256 }),
    },
  }));
  if (declared === undefined) {
    // nothing declares the apps: those the store has deployments of
    const seen = new Set<string>();
    for (const d of await ctx.store.listDeployments(stack, { limit: 200 }))
      if (!seen.has(d.app)) {
        seen.add(d.app);
        apps.push({ name: d.app, layers: [], source: null });
      }
  }
  return Promise.all(
    apps.map(async (app) => ({
      ...app,
      deployed: (await ctx.store.deployedRevision(stack, app.name)) ?? null,
      ab: brief ? null : await abOf(ctx, stack, app.name, instances, app.layers),
    })),
  );
}

function deploymentJson(d: DeploymentRecord): Summary["deployments"][number] {
  return {
    id: d.id,
    app: d.app,
    revision: d.revision,
    requested: d.requested,
    strategy: d.strategy,
    status: d.status,
    user: d.user,
    createdAt: d.createdAt,
    ...(d.finishedAt === undefined ? {} : { finishedAt: d.finishedAt }),
  };
}

function eventJson(e: EventRecord): Summary["events"][number] {
  return {
    id: e.id,
    stack: e.stack,
    kind: e.kind,
    status: e.status,
    stateVersion: e.stateVersion ?? null,
    createdAt: e.createdAt,
    ...(e.startedAt === undefined ? {} : { startedAt: e.startedAt }),
    ...(e.finishedAt === undefined ? {} : { finishedAt: e.finishedAt }),
  };
}

/**
 * One stack as the panel shows it: GET /v1/stacks/:stack/summary. `brief` (the overview): the last
 * 5 events, and neither agents, A/B states nor deployments.
 */
export async function stackSummary(
  ctx: ServerContext,
  name: string,
  brief?: { taken: TakenNames },
): Promise<Summary> {
  const { declared, invalid } = await declaration(ctx, name, brief?.taken);
  const last = brief ? 5 : 10;
  const [records, agents, state, events, deployments] = await Promise.all([
    ctx.store.listInstances(name),
    brief ? new Map<string, InstanceJson["agent"]>() : agentsOf(ctx, name),
    ctx.store.latestState(name),
    ctx.store.listEvents(name, { limit: last }),
    brief ? [] : ctx.store.listDeployments(name, { limit: last }),
  ]);
  const instances = instancesOf(declared, records, agents);
  return {
    name,
    file: `stacks/${name}.yaml`,
    ...(invalid ? { invalid } : {}),
    stateVersion: state?.version ?? null,
    layers: layersOf(declared, instances),
    instances,
    apps: await appsOf(ctx, name, declared, instances, brief !== undefined),
    events: events.map(eventJson),
    deployments: deployments.map(deploymentJson),
  };
}

type OverviewStack = v.InferOutput<typeof overviewStackSchema>;

async function overviewOf(ctx: ServerContext, name: string, taken: TakenNames): Promise<OverviewStack> {
  const summary = await stackSummary(ctx, name, { taken });
  const counts: Record<string, number> = {};
  for (const i of summary.instances) counts[i.status] = (counts[i.status] ?? 0) + 1;
  return {
    name,
    file: summary.file,
    ...(summary.invalid ? { invalid: summary.invalid } : {}),
    stateVersion: summary.stateVersion,
    layers: summary.layers.map((l) => ({ name: l.name, instances: l.instances })),
    counts,
    apps: summary.apps.map((a) => {
      const d = a.deployed as DeploymentRecord | null;
      return {
        name: a.name,
        deployed: d && {
          id: d.id,
          revision: d.revision,
          requested: d.requested,
          status: d.status,
          finishedAt: d.finishedAt ?? null,
        },
      };
    }),
    events: summary.events,
  };
}

// at most this many stacks are read at once (each opens its file and the store)
const parallel = 8;

async function inTurn<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
  return results;
}

/** Declares GET /v1/overview and GET /v1/stacks/:stack/summary. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/overview",
      summary:
        "Every stack the caller may view at a glance: layers, instance counts by status, apps' deployed revisions, last events",
      tags: ["stacks"],
      description:
        "Any valid token or user may ask; only the stacks its grants let it view are listed. A stack file that does not load is listed with `invalid` and what the store knows.",
      auth: "token",
      // any caller may ask (one with grants on one stack has no grant on "every stack"): it sees its own
      authorizeInHandler: true,
      response: v.object({ stacks: v.array(overviewStackSchema) }),
    },
    async ({ actor }) => {
      const names = (await servedStackNames(ctx.kitchen)).filter((name) => can(actor, name, "viewer"));
      const taken = await takenNames(ctx);
      const stacks = await inTurn(names, (name) =>
        // a file removed meanwhile is left out
        overviewOf(ctx, name, taken).catch((error: unknown) => {
          if (isGalleyError(error) && error.code === "NOT_FOUND") return undefined;
          throw error;
        }),
      );
      return { stacks: stacks.filter((s) => s !== undefined) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/summary",
      summary:
        "A stack as the panel shows it: layers, instances (status, transport, scaling, agent), apps (deployed, A/B), last events and deployments",
      tags: ["stacks"],
      description:
        "A stack file that does not load is still summarized: `invalid: { code, message }`, and the layers, instances and apps the store knows (the stack as last applied).",
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      response: summarySchema,
    },
    async ({ params }) => stackSummary(ctx, params.stack),
  );
}
