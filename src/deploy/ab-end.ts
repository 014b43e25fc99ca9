import { GalleyError } from "../core/errors.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { DeploymentDetail, DeploymentRecord } from "../store/store.ts";
import { abInstances, activeAb, equalWeight } from "./ab.ts";
import { type DeployRequest, deploy, deploymentTargets } from "./controller.ts";

// The end of an A/B deployment: promote (B to every other instance, with a strategy) or abort
// (B's instances back to A's release). Both are deployments like any other, and both put every
// instance's load-balancer weight back to equal once they succeed.

/** What `galley ab promote|abort` asks: a deployment request without the app's revision. */
export type AbEndRequest = Omit<
  DeployRequest,
  "revision" | "rollbackOf" | "reuse" | "ab" | "only" | "weights" | "requested" | "endsAb" | "attributes"
>;

/** Where an app's A/B stands, as `galley ab status` shows it. */
export interface AbStatus {
  app: string;
  /** the A/B under way, or undefined when there is none */
  deployment: DeploymentRecord | undefined;
  /** A: the deployment every other instance runs */
  base: DeploymentRecord | undefined;
  /** the instances that run B */
  instances: string[];
  /** B's share as asked, and as the weights give it */
  share: string | undefined;
  expected: string | undefined;
  /** each instance's load-balancer weight, from the store */
  weights: Record<string, number>;
}

/** The app's A/B under way (or none), its instances and the weights the store holds. */
export async function abStatus(context: StackContext, app: string): Promise<AbStatus> {
  const { store, stack } = context;
  // the app's online instances: those a deployment and the load balancer know
  const { instances } = await deploymentTargets(context, app);
  const deployment = await activeAb(store, stack.name, app);
  const params = (deployment?.params ?? {}) as Record<string, unknown>;
  const base = typeof params.base === "string" ? await store.getDeployment(Number(params.base)) : undefined;
  const weights: Record<string, number> = {};
  const records = new Map((await store.listInstances(stack.name)).map((r) => [r.name, r]));
  for (const instance of instances) weights[instance.name] = records.get(instance.name)?.weight ?? 100;
  return {
    app,
    deployment,
    base: base ? withoutSteps(base) : undefined,
    instances: deployment ? abInstances(deployment) : [],
    share: typeof params.share === "string" ? params.share : undefined,
    expected: typeof params.expected === "string" ? params.expected : undefined,
    weights,
  };
}

/**
 * `galley ab promote APP`: B's commit and release to every instance that runs A, with the
 * request's strategy (B's instances keep their release); then every weight equal.
 */
export async function promoteAb(request: AbEndRequest): Promise<DeploymentDetail> {
  const ab = await underWay(request);
  const onB = new Set(abInstances(ab));
  const { instances } = await deploymentTargets(request.context, request.app);
  return deploy({
    ...request,
    reuse: ab,
    only: instances.filter((i) => !onB.has(i.name)).map((i) => i.name),
    weights: equalWeights(instances.map((i) => i.name)),
    requested: `promote A/B #${ab.id}`,
    endsAb: true,
  });
}

/** `galley ab abort APP`: B's instances back to A's release (a rollback there); then every weight equal. */
export async function abortAb(request: AbEndRequest): Promise<DeploymentDetail> {
  const ab = await underWay(request);
  const base = await request.context.store.getDeployment(Number((ab.params as { base?: unknown }).base));
  if (!base) {
    throw new GalleyError(
      "STATE_INVALID",
      `A/B deployment #${ab.id} names no deployment of A (params.base)`,
      {
        hint: `roll B's instances back by hand: galley deployments ${request.app} --stack ${request.context.file}`,
      },
    );
  }
  const { instances } = await deploymentTargets(request.context, request.app);
  return deploy({
    ...request,
    rollbackOf: withoutSteps(base),
    only: abInstances(ab),
    weights: equalWeights(instances.map((i) => i.name)),
    requested: `abort A/B #${ab.id}: back to #${base.id}`,
    endsAb: true,
  });
}

async function underWay(request: AbEndRequest): Promise<DeploymentRecord> {
  const { context, app } = request;
  await deploymentTargets(context, app);
  const ab = await activeAb(context.store, context.stack.name, app);
  if (!ab) {
    throw new GalleyError(
      "ARGS_INVALID",
      `no A/B deployment of ${app} is under way in stack ${context.stack.name}`,
      {
        hint: `start one: galley deploy ${app} --stack ${context.file} --revision B --ab 10%`,
      },
    );
  }
  return ab;
}

function equalWeights(names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((name) => [name, equalWeight]));
}

function withoutSteps(record: DeploymentRecord & { steps?: unknown }): DeploymentRecord {
  const { steps: _steps, ...rest } = record;
  return rest;
}
