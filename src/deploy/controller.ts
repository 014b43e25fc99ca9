import * as os from "node:os";
import * as path from "node:path";
import { errorMessage, GalleyError } from "../core/errors.ts";
import type { HeldLock } from "../core/host.ts";
import { flockLocal } from "../hosts/flock.ts";
import { prepareApps } from "../lifecycle/apps.ts";
import type { StackContext } from "../lifecycle/context.ts";
import { Lifecycle } from "../lifecycle/lifecycle.ts";
import { releaseOf } from "../lifecycle/pins.ts";
import { releaseTarget } from "../lifecycle/releases.ts";

export { releaseOf };
import type { App, Instance } from "../stacks/schema.ts";
import type { DeploymentDetail, DeploymentRecord, DeploymentStep } from "../store/store.ts";
import { abSplit, activeAb, equalWeight, refuseDuringAb } from "./ab.ts";
import { InstanceConnections } from "./hosts.ts";
import { planRollout, type RolloutPlan, type StrategyParams } from "./strategies/index.ts";
import { type Size, sizeText } from "./strategies/sizes.ts";
import { type Outcome, Rollout } from "./rollout.ts";
import { type DeployRequest, migratedMarker } from "./request.ts";

export { type DeployRequest, type DeployStepPhase, deployPhases } from "./request.ts";

// The rollout controller: one deployment of one app of a stack, batch by batch as its strategy
// plans, every step recorded in the store. Per instance: drain (out of the load balancer, through
// the stack state and the lb layer's configure) → prepare (ship, unpack, link shared files, build,
// the layers' deploy recipes) → migrate (once per deployment, before any switch) → switch (the
// `current` link, restart) → health check → back in service. A failure beyond --max-fail, or any
// failure under cutover, switches every instance this deployment switched back to its release.

/** The plan of a deployment, as `galley deploy --plan` prints it: nothing is changed. */
export interface DeploymentPlan {
  app: string;
  revision: string;
  requested: string;
  strategy: string;
  params: Record<string, string>;
  instances: string[];
  plan: RolloutPlan;
  migrate: boolean;
  loadBalancer: string | undefined;
}

/** Resolves what a deployment would do, changing nothing: the revision, the instances, the batches. */
export async function planDeployment(request: DeployRequest): Promise<DeploymentPlan> {
  const { app, instances } = await abTargets(request);
  const plan = planRollout(
    request.strategy,
    instances.map((i) => i.name),
    request.params,
  );
  const again = request.rollbackOf ?? request.reuse;
  const requested = again ? again.revision : (request.revision ?? sourceRevision(app));
  const [prepared] = await prepareApps(request.context, [withRevision(app, requested)]);
  return {
    app: app.name,
    revision: prepared!.revision,
    requested,
    strategy: request.strategy,
    params: paramsText(request.params),
    instances: instances.map((i) => i.name),
    plan,
    migrate: app.release?.migrate !== undefined && again === undefined,
    loadBalancer: app.load_balancer
      ? `${app.load_balancer.type} on layer ${app.load_balancer.layer}, backend ${app.load_balancer.backend ?? app.layers[0]}`
      : undefined,
  };
}

/**
 * Runs one deployment to its end and returns its record with every step. One deployment of an
 * app at a time per kitchen (a lock on this machine); a deployment left `running` by a process
 * that died is finished as `interrupted` first, its drained instances put back in service and the
 * instances it switched returned to their release.
 */
export async function deploy(request: DeployRequest): Promise<DeploymentDetail> {
  const { context } = request;
  const { store, stack } = context;
  const { app, instances, weights, abParams } = await abTargets(request);
  const rollout = planRollout(
    request.strategy,
    instances.map((i) => i.name),
    request.params,
  );
  const lock = await deployLock(context, app.name);
  const connections = new InstanceConnections(context, request.signal);
  try {
    const lifecycle = await Lifecycle.open(context, {
      waitMs: request.waitMs,
      signal: request.signal,
      ...(request.onPhase ? { onPhase: request.onPhase } : {}),
    });
    await recoverInterrupted(context, lifecycle, app, request);
    const rollback = request.rollbackOf;
    // a rollback, or an A/B's promote: an earlier deployment's commit, release and attributes again
    const again = rollback ?? request.reuse;
    const requested = again ? again.revision : (request.revision ?? sourceRevision(app));
    const [prepared] = await prepareApps(context, [withRevision(app, requested)]);
    const record = await store.createDeployment({
      stack: stack.name,
      app: app.name,
      revision: prepared!.revision,
      requested: request.requested ?? (rollback ? `rollback to #${rollback.id}` : requested),
      attributes: again ? again.attributes : (request.attributes?.values ?? {}),
      strategy: request.strategy,
      params: {
        ...paramsText(request.params),
        release: again ? releaseOf(again) : undefined,
        ...abParams,
        ...(request.only || abParams ? { instances: instances.map((i) => i.name) } : {}),
        ...(weights ? { weights } : {}),
      },
      user: request.user ?? `${os.userInfo().username}@${os.hostname()}`,
      ...(rollback ? { rollbackOf: rollback.id } : {}),
      migration: app.release?.migrate !== undefined && !again ? "pending" : "none",
    });
    request.onCreated?.(record);
    const releaseId = again ? Number(releaseOf(again)) : record.id;
    const run = new Rollout(request, lifecycle, connections, app, instances, record, {
      ...prepared!,
      release: releaseTarget(app, releaseId)!,
    });
    await store.startDeployment(record.id);
    request.log?.(
      `deployment #${record.id}: ${app.name} ${prepared!.revision.slice(0, 12)} (${record.requested}) to ${instances.length} instance${instances.length === 1 ? "" : "s"}, ${request.strategy} in ${rollout.batches.length} batch${rollout.batches.length === 1 ? "" : "es"}`,
    );
    return await finishRun(lifecycle, run, rollout, record.id);
  } finally {
    await connections.close();
    await lock.release();
  }
}

async function finishRun(
  lifecycle: Lifecycle,
  run: Rollout,
  plan: RolloutPlan,
  id: number,
): Promise<DeploymentDetail> {
  const { store } = lifecycle.context;
  let outcome: Outcome;
  try {
    outcome = await run.execute(plan);
    const weights = (await store.getDeployment(id))!.params.weights;
    if (outcome.status === "succeeded" && outcome.note === undefined && isWeights(weights))
      outcome = await run.weigh(weights);
  } catch (error) {
    // a deployment that cannot go on ends failed, with why; its instances are back in service
    await store.finishDeployment(id, "failed", errorMessage(error)).catch(() => {});
    throw error;
  }
  await store.finishDeployment(id, outcome.status, outcome.note);
  await lifecycle.idle();
  return (await store.getDeployment(id))!;
}

/** What `galley deployment resume ID` asks. */
export type ResumeRequest = Omit<
  DeployRequest,
  "app" | "strategy" | "params" | "revision" | "attributes" | "rollbackOf"
> & {
  id: number;
};

/**
 * Finishes a deployment its process left unfinished (killed, the machine rebooted): the instances
 * it had not brought through (switched, checked, back in service) go through with the same
 * strategy, commit, release and attributes; a migration it finished is not run again (the store
 * says done, or the host's marker says it finished before the process died).
 */
export async function resumeDeployment(request: ResumeRequest): Promise<DeploymentDetail> {
  const { context } = request;
  const { store, stack } = context;
  const found = await store.getDeployment(request.id);
  if (!found || found.stack !== stack.name) {
    throw new GalleyError("ARGS_INVALID", `stack ${stack.name} has no deployment #${request.id}`, {
      hint: `galley deployments --stack ${context.file} lists them`,
    });
  }
  if (!["running", "interrupted", "pending"].includes(found.status)) {
    throw new GalleyError(
      "DEPLOY_FAILED",
      `deployment #${found.id} ended ${found.status}: there is nothing to resume`,
      {
        hint: `deploy again (galley deploy ${found.app}) or roll back (galley rollback ${found.app} --to ID)`,
      },
    );
  }
  const [newest] = await store.listDeployments(stack.name, { app: found.app, limit: 1 });
  if (newest && newest.id !== found.id) {
    throw new GalleyError(
      "DEPLOY_FAILED",
      `deployment #${newest.id} of ${found.app} ran after #${found.id}: resuming #${found.id} would undo it`,
      {
        hint: `deploy again, or roll back to #${found.id}'s release: galley rollback ${found.app} --to ${found.id}`,
      },
    );
  }
  const { app, instances } = await deploymentTargets(context, found.app);
  const lock = await deployLock(context, app.name);
  const connections = new InstanceConnections(context, request.signal);
  try {
    const lifecycle = await Lifecycle.open(context, {
      waitMs: request.waitMs,
      signal: request.signal,
      ...(request.onPhase ? { onPhase: request.onPhase } : {}),
    });
    const record = (await store.getDeployment(found.id))!;
    request.onCreated?.(record);
    const drains = app.load_balancer !== undefined;
    const { done, failed } = instanceProgress(record.steps, drains, app.release?.health_check !== undefined);
    // an A/B, its promote or its abort: only the instances it was for
    const only = (record.params as { instances?: unknown }).instances;
    const remaining = instances.filter(
      (i) => !done.has(i.name) && (!Array.isArray(only) || only.includes(i.name)),
    );
    const { parseSize } = await import("./strategies/sizes.ts");
    const text = record.params as Record<string, unknown>;
    const size = (key: string, flag: string, min: 0 | 1) =>
      typeof text[key] === "string" ? parseSize(flag, text[key], min) : undefined;
    const params: StrategyParams = {
      batch: size("batch", "--batch", 1),
      maxUnavailable: size("maxUnavailable", "--max-unavailable", 1),
      maxFail: size("maxFail", "--max-fail", 0),
    };
    const plan = planRollout(
      record.strategy,
      remaining.map((i) => i.name),
      params,
    );
    const release = releaseTarget(app, Number(releaseOf(record)))!;
    if (record.migration === "running")
      await settleMigration(record, release, instances, connections, store, request.log);
    const [prepared] = await prepareApps(context, [withRevision(app, record.revision)]);
    const run = new Rollout(
      {
        ...request,
        app: app.name,
        strategy: record.strategy,
        params,
        ...(record.rollbackOf ? { rollbackOf: record } : {}),
        ...(!record.rollbackOf && record.params.release !== undefined ? { reuse: record } : {}),
      },
      lifecycle,
      connections,
      app,
      remaining,
      record,
      {
        ...prepared!,
        release,
      },
    );
    run.carryFailures(failed);
    await store.startDeployment(record.id);
    request.log?.(
      `deployment #${record.id} resumed: ${remaining.length ? remaining.map((i) => i.name).join(", ") : "no instance"} left (${done.size} done)`,
    );
    return await finishRun(lifecycle, run, plan, record.id);
  } finally {
    await connections.close();
    await lock.release();
  }
}

// which instances a deployment brought through, and which failed, from its recorded steps
function instanceProgress(
  steps: readonly DeploymentStep[],
  drains: boolean,
  checks: boolean,
): { done: Set<string>; failed: Map<string, string> } {
  const done = new Set<string>();
  const failed = new Map<string, string>();
  const by = new Map<string, DeploymentStep[]>();
  for (const step of steps)
    if (step.status !== "running") by.set(step.instance, [...(by.get(step.instance) ?? []), step]);
  for (const [name, list] of by) {
    const bad = list.find((s) => s.status === "failed");
    if (bad) {
      failed.set(name, `${bad.phase} failed`);
      continue;
    }
    const finalPhase = drains ? "undrain" : checks ? "health" : "switch";
    const switched = list.findIndex((s) => s.phase === "switch");
    if (switched >= 0 && list.slice(switched).some((s) => s.phase === finalPhase)) done.add(name);
  }
  return { done, failed };
}

// a migration claimed by a process that died: the release's marker says whether it finished
async function settleMigration(
  record: DeploymentRecord,
  release: { path: string },
  instances: readonly Instance[],
  connections: InstanceConnections,
  store: StackContext["store"],
  log: ((line: string) => void) | undefined,
): Promise<void> {
  const instance = instances.find((i) => i.name === record.migrationInstance);
  let finished = false;
  if (instance) {
    const { host } = await connections.get(instance);
    finished =
      (await host.exec(["test", "-e", path.posix.join(release.path, migratedMarker)])).exitCode === 0;
  }
  await store.resetMigration(record.id, finished ? "done" : "pending");
  log?.(
    finished
      ? `the migration finished on ${record.migrationInstance} before the process died: not run again`
      : `the migration did not finish on ${record.migrationInstance ?? "its instance"}: it runs again`,
  );
}

/** The app and the online instances of its layers, in stack-file order; errors name the stack file. */
export async function deploymentTargets(
  context: StackContext,
  name: string,
): Promise<{ app: App; instances: Instance[] }> {
  const { stack, store, file } = context;
  const app = stack.apps.find((a) => a.name === name);
  if (!app) {
    throw new GalleyError("STACK_INVALID", `${file}: the stack has no app "${name}"`, {
      hint: stack.apps.length
        ? `its apps: ${stack.apps.map((a) => a.name).join(", ")}`
        : "the stack file names no app",
    });
  }
  if (!app.release) {
    throw new GalleyError("STACK_INVALID", `${file}: app ${name} has no release settings`, {
      hint: "galley deploy makes Galley's releases (releases/, current, health checks): add a release: section to the app (docs/deploy.md); galley run deploy runs the layers' deploy recipes alone",
    });
  }
  const online = new Set(
    (await store.listInstances(stack.name)).filter((r) => r.status === "online").map((r) => r.name),
  );
  const instances = stack.instances.filter(
    (i) => online.has(i.name) && i.layers.some((l) => app.layers.includes(l)),
  );
  if (instances.length === 0) {
    throw new GalleyError(
      "STACK_INVALID",
      `no online instance of layers ${app.layers.join(", ")} to deploy ${name} to`,
      {
        hint: `start some first: galley stack up ${stack.name}`,
      },
    );
  }
  return { app, instances };
}

// a deployment left `running` with no process holding the lock died: put it right before the next
async function recoverInterrupted(
  context: StackContext,
  lifecycle: Lifecycle,
  app: App,
  request: DeployRequest,
): Promise<void> {
  const { store, stack } = context;
  const stale = (await store.listDeployments(stack.name, { app: app.name, limit: 20 })).filter(
    (d) => d.status === "running" || d.status === "pending",
  );
  for (const record of stale) {
    request.log?.(`deployment #${record.id} was interrupted (its process ended): putting its instances back`);
    await store.finishDeployment(
      record.id,
      "interrupted",
      "its process ended before it did; the next deployment put its instances back in service",
    );
  }
  // out of service and no deployment of the app runs (this one holds the lock): a deployment
  // killed, or interrupted while it drained, left them so; an A/B killed while it set its weights
  // left them uneven (no A/B is under way: an A/B under way has succeeded)
  const layers = new Set(app.layers);
  const mine = new Set(stack.instances.filter((i) => i.layers.some((l) => layers.has(l))).map((i) => i.name));
  const records = (await store.listInstances(stack.name)).filter((i) => mine.has(i.name));
  const out = records.filter((i) => i.inService === false);
  const weighed =
    (await activeAb(store, stack.name, app.name)) === undefined
      ? records.filter((i) => i.weight !== equalWeight)
      : [];
  if (out.length === 0 && weighed.length === 0) return;
  for (const instance of out) await store.setInstanceService(stack.name, instance.name, true);
  for (const instance of weighed) await store.setInstanceWeight(stack.name, instance.name, equalWeight);
  if (out.length > 0) request.log?.(`back in service first: ${out.map((i) => i.name).join(", ")}`);
  if (weighed.length > 0)
    request.log?.(`equal weights again first: ${weighed.map((i) => i.name).join(", ")}`);
  if (app.load_balancer) await lifecycle.run("configure", { layer: app.load_balancer.layer });
}

async function deployLock(context: StackContext, app: string): Promise<HeldLock> {
  const file = path.join(context.kitchen, ".galley", `deploy-${context.stack.name}-${app}.lock`);
  const { mkdir } = await import("node:fs/promises");
  await mkdir(path.dirname(file), { recursive: true });
  const held = await flockLocal(file, { waitMs: 0 });
  if (!held) {
    throw new GalleyError(
      "DEPLOY_LOCKED",
      `another deployment of ${app} in stack ${context.stack.name} is running`,
      {
        hint: `wait for it (galley deployments ${app} --stack ${context.file}), then deploy again`,
      },
    );
  }
  return held;
}

// the instances a deployment is for (the app's online ones, or those of request.only), refused during an A/B unless
// it ends it; for an A/B, its split: B on the first of the app's instances, and every weight
async function abTargets(request: DeployRequest): Promise<{
  app: App;
  instances: Instance[];
  weights: Record<string, number> | undefined;
  abParams: Record<string, string> | undefined;
}> {
  const { context } = request;
  const { app, instances: all } = await deploymentTargets(context, request.app);
  if (!request.endsAb) await refuseDuringAb(context.store, context.stack.name, app.name, context.file);
  const only = request.only;
  const instances = only ? all.filter((i) => only.includes(i.name)) : all;
  if (request.strategy !== "ab") {
    if (request.ab !== undefined)
      throw new GalleyError("USAGE", `--ab ${request.ab}% does not go with --strategy ${request.strategy}`, {
        hint: "an A/B deployment is its own strategy: leave --strategy out",
      });
    return { app, instances, weights: request.weights, abParams: undefined };
  }
  if (request.ab === undefined)
    throw new GalleyError("USAGE", "--strategy ab needs B's share: --ab N%", {
      hint: `galley deploy ${app.name} --revision B --ab 10%`,
    });
  if (!app.load_balancer)
    throw new GalleyError(
      "STACK_INVALID",
      `${context.file}: app ${app.name} has no load_balancer: an A/B splits requests through one`,
      {
        hint: "add load_balancer (type, layer, backend) to the app (docs/deploy.md)",
      },
    );
  const base = await context.store.deployedRevision(context.stack.name, app.name);
  if (!base)
    throw new GalleyError(
      "DEPLOY_FAILED",
      `${app.name} was never deployed: an A/B needs A running everywhere first`,
      {
        hint: `galley deploy ${app.name} --stack ${context.file}`,
      },
    );
  const split = abSplit(request.ab, all.length);
  const weights = Object.fromEntries(
    all.map((i, index) => [i.name, index < split.count ? split.weightB : split.weightA]),
  );
  return {
    app,
    instances: all.slice(0, split.count),
    weights,
    abParams: { share: `${request.ab}%`, expected: `${split.share}%`, base: String(base.id) },
  };
}

function isWeights(value: unknown): value is Record<string, number> {
  return (
    typeof value === "object" &&
    value !== null &&
    Object.values(value).every((w) => typeof w === "number" && Number.isInteger(w))
  );
}

function sourceRevision(app: App): string {
  return app.source.type === "git" ? app.source.revision : "archive";
}

function withRevision(app: App, revision: string): App {
  return app.source.type === "git" ? { ...app, source: { ...app.source, revision } } : app;
}

function paramsText(params: StrategyParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, size] of Object.entries(params) as [string, Size | undefined][])
    if (size !== undefined) out[key] = sizeText(size);
  return out;
}
