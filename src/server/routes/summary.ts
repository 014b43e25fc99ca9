import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as v from "valibot";
import { GalleyError, isGalleyError } from "../../core/errors.ts";
import { abInstances, activeAb } from "../../deploy/ab.ts";
import { cookbooksDir } from "../../lifecycle/context.ts";
import { agentLastRun } from "../../lifecycle/status.ts";
import { type Instance, instanceTransport, type StackFile } from "../../stacks/schema.ts";
import { loadStack } from "../../stacks/stack.ts";
import type { DeploymentRecord, EventRecord, InstanceRecord } from "../../store/store.ts";
import type { ServerContext } from "../context.ts";
import { servedStackFile, withoutKitchenPath, withServedStack } from "./stacks.ts";
import { type InstanceJson, type Summary, scalingKinds } from "./summary-schema.ts";

// What the web panel shows of stacks, read in one request each: every stack the caller may view
// at a glance (GET /v1/overview), and one stack with its layers, instances (status, transport,
// agent), apps (deployed revision, A/B) and last events and deployments (GET
// /v1/stacks/:stack/summary). A stack file that does not load is still summarized: `invalid`
// says why, and the rest is what the store knows (the stack as last applied, the instances'
// records). Nothing here is a secret: apps' sources lose their URLs' credentials and queries,
// and environments and attributes are not shown.

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
export type TakenNames = { stack: string; names: Set<string> }[];

export async function takenNames(ctx: ServerContext): Promise<TakenNames> {
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
      lastRun: agentLastRun(run),
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
