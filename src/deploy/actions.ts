import { GalleyError } from "../core/errors.ts";
import type { StackContext } from "../lifecycle/context.ts";
import { Lifecycle, type LifecycleOptions, type Selection } from "../lifecycle/lifecycle.ts";
import { finishedLifecycle, type LifecycleOutcome } from "../lifecycle/status.ts";
import type { LifecycleEvent } from "../stacks/schema.ts";
import type { DeploymentDetail } from "../store/store.ts";
import { firstDeployments } from "./ask.ts";
import type { DeployRequest } from "./request.ts";

// The lifecycle commands as one function each of the CLI and the server calls: `galley stack
// up|down`, `galley instance start|stop`, `galley run EVENT`, `galley run-recipes`. Starting
// (stack up, instance start) ends with the first deployment of apps never deployed.

/** What a stack action does. */
export type StackAction =
  | { kind: "up" }
  | { kind: "down" }
  | { kind: "start"; instances: readonly string[] }
  | { kind: "stop"; instances: readonly string[] }
  | { kind: "event"; event: LifecycleEvent; selection: Selection; app?: string | undefined }
  | { kind: "recipes"; recipes: readonly string[]; selection: Selection };

/** How a stack action reports: the lifecycle's callbacks, and the first deployments' progress. */
export interface StackActionOptions extends LifecycleOptions {
  deployments?: Pick<DeployRequest, "user" | "onStep" | "log" | "onCreated" | "onPhase"> & {
    /** a first deployment ended */
    onDeployment?: (detail: DeploymentDetail) => void;
  };
}

/** What a stack action did, and its exit code (the CLI's). */
export interface StackActionResult {
  outcome: LifecycleOutcome;
  deployments: DeploymentDetail[];
  exitCode: number;
}

/** Runs one stack action to its end: the lifecycle, then (starting) the first deployments. */
export async function runStackAction(
  context: StackContext,
  action: StackAction,
  options: StackActionOptions = {},
): Promise<StackActionResult> {
  const lifecycle = await Lifecycle.open(context, options);
  switch (action.kind) {
    case "up":
      await lifecycle.up();
      break;
    case "down":
      await lifecycle.down();
      break;
    case "start":
    case "stop":
      for (const name of action.instances) lifecycle.instance(name);
      if (action.kind === "start") await lifecycle.start(action.instances);
      else await lifecycle.stop(action.instances);
      break;
    case "event":
      await lifecycle.run(action.event, action.selection, action.app);
      break;
    case "recipes":
      await lifecycle.runRecipes(action.recipes, action.selection);
      break;
  }
  await lifecycle.idle();
  const deployments: DeploymentDetail[] = [];
  if (action.kind === "up" || action.kind === "start") {
    const { onDeployment, ...request } = options.deployments ?? {};
    for (const detail of await firstDeployments(context, {
      ...request,
      signal: options.signal,
      waitMs: options.waitMs,
      onCreated: request.onCreated,
    })) {
      onDeployment?.(detail);
      deployments.push(detail);
    }
  }
  const { outcome, exitCode } = await finishedLifecycle(lifecycle);
  const failed = deployments.find((d) => d.status !== "succeeded");
  return { outcome, deployments, exitCode: exitCode || (failed ? deploymentExitCode(failed) : 0) };
}

/** A deployment's exit code: 0 succeeded, 130 interrupted, else 1. */
export function deploymentExitCode(detail: Pick<DeploymentDetail, "status">): number {
  if (detail.status === "succeeded") return 0;
  if (detail.status === "interrupted") return 130;
  return 1;
}

/** `galley run EVENT [--layer L | --instance I] [--app A]` as an action, checked as the CLI checks it. */
export function eventAction(
  event: LifecycleEvent,
  options: { layer?: string | undefined; instance?: string | undefined; app?: string | undefined },
): StackAction {
  if (options.layer !== undefined && options.instance !== undefined) {
    throw new GalleyError("USAGE", "give --layer or --instance, not both", {
      hint: "--layer app runs on every online app instance; --instance app1 on that one",
    });
  }
  if (options.app !== undefined && event !== "deploy" && event !== "undeploy")
    throw new GalleyError("USAGE", "--app goes with deploy or undeploy", {
      hint: "galley run deploy --app hello --stack webapp",
    });
  return {
    kind: "event",
    event,
    selection: { layer: options.layer, instance: options.instance },
    app: options.app,
  };
}
