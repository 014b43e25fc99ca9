import { GalleyError } from "../core/errors.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { DeploymentDetail, DeploymentRecord } from "../store/store.ts";
import type { DeployRequest } from "./request.ts";
import type { StrategyParams } from "./strategies/index.ts";

// What `galley deploy` / `galley rollback` and the server's deployment routes ask, in one shape:
// the CLI's options by their flag names. Both turn it into a DeployRequest here, so the rules
// (defaults, --ab, the rollback target) live in one place.

/** A deployment's options, named as the CLI's flags (the API's JSON body uses the same names). */
export interface DeployOptions {
  revision?: string | undefined;
  strategy?: string | undefined;
  batch?: string | undefined;
  "max-unavailable"?: string | undefined;
  "max-fail"?: string | undefined;
  /** B's share of requests: "10%" or "10" */
  ab?: string | undefined;
  /** seconds one batch may take */
  deadline?: string | undefined;
  /** this deployment's custom JSON, at the `deployment` attribute level */
  attributes?: { label: string; values: Record<string, unknown> } | undefined;
  forks?: string | undefined;
  /** seconds to wait for a run in progress on a host (default 600) */
  wait?: string | undefined;
}

/** What `galley rollback` asks: the deployment to go back to, else the one before the current. */
export interface RollbackOptions extends Omit<DeployOptions, "revision" | "ab" | "attributes"> {
  to?: string | undefined;
}

/** The strategy parameters of --batch, --max-unavailable and --max-fail. */
export async function strategyParams(options: DeployOptions): Promise<StrategyParams> {
  const { parseSize } = await import("./strategies/sizes.ts");
  const size = (key: "batch" | "max-unavailable" | "max-fail", min: 0 | 1) => {
    const text = options[key];
    return text === undefined ? undefined : parseSize(`--${key}`, text, min);
  };
  return {
    batch: size("batch", 1),
    maxUnavailable: size("max-unavailable", 1),
    maxFail: size("max-fail", 0),
  };
}

/** The run settings every deployment takes: --forks, --wait, --deadline. */
export async function runSettings(
  options: Pick<DeployOptions, "forks" | "wait" | "deadline">,
): Promise<Pick<DeployRequest, "forks" | "waitMs" | "deadlineMs">> {
  const { parseDeadline } = await import("./deadline.ts");
  let forks: number | undefined;
  if (options.forks !== undefined) {
    forks = Number(options.forks);
    if (!Number.isInteger(forks) || forks < 1)
      throw new GalleyError("ARGS_INVALID", `--forks ${options.forks}: expected a whole number from 1 up`, {
        hint: "for example --forks 5",
      });
  }
  return { forks, waitMs: waitMs(options.wait), deadlineMs: parseDeadline(options.deadline) };
}

/** How long to wait for a host's run lock: --wait SECONDS, 600 s by default. */
export function waitMs(wait: string | undefined): number {
  if (wait === undefined) return 600_000;
  const seconds = Number(wait);
  if (wait.trim() === "" || !Number.isFinite(seconds) || seconds < 0) {
    throw new GalleyError("ARGS_INVALID", `--wait ${wait}: expected a number of seconds, 0 or more`, {
      hint: "for example --wait 60, or --wait 0 to fail at once when another run holds the host",
    });
  }
  return Math.round(seconds * 1000);
}

/** The request of `galley deploy APP`: rolling by default, "ab" with --ab. */
export async function deployRequestOf(
  app: string,
  options: DeployOptions,
): Promise<Omit<DeployRequest, "context">> {
  const ab = options.ab === undefined ? undefined : abShare(options.ab);
  return {
    app,
    revision: options.revision,
    strategy: options.strategy ?? (ab === undefined ? "rolling" : "ab"),
    ab,
    params: await strategyParams(options),
    attributes: options.attributes,
    ...(await runSettings(options)),
  };
}

/** The request of `galley rollback APP`: the target's strategy unless another is asked. */
export async function rollbackRequestOf(
  context: StackContext,
  app: string,
  options: RollbackOptions,
): Promise<Omit<DeployRequest, "context">> {
  const params = await strategyParams(options);
  const settings = await runSettings(options);
  const target = await rollbackTarget(context, app, options.to);
  return { app, strategy: options.strategy ?? target.strategy, params, rollbackOf: target, ...settings };
}

/** --ab N%: B's share of requests, a whole percentage from 1 to 99. */
export function abShare(text: string): number {
  const match = /^(\d{1,2})%?$/.exec(text.trim());
  const value = match ? Number(match[1]) : Number.NaN;
  if (!match || value < 1 || value > 99) {
    throw new GalleyError("USAGE", `--ab ${text}: B's share is a whole percentage from 1% to 99%`, {
      hint: "e.g. --ab 10%",
    });
  }
  return value;
}

/** The deployment a rollback returns to: `to` (an id, "#3" too), else the last succeeded one before the current release. */
export async function rollbackTarget(
  context: StackContext,
  app: string,
  to: string | undefined,
): Promise<DeploymentRecord> {
  const { store, stack } = context;
  if (to !== undefined) {
    const id = Number(to.replace(/^#/, ""));
    const found = Number.isInteger(id) ? await store.getDeployment(id) : undefined;
    if (!found || found.stack !== stack.name || found.app !== app) {
      throw new GalleyError(
        "ARGS_INVALID",
        `--to ${to}: no deployment of ${app} in stack ${stack.name} has that id`,
        { hint: `galley deployments ${app} --stack ${stack.name} lists them` },
      );
    }
    return found;
  }
  const all = await store.listDeployments(stack.name, { app, limit: 200 });
  const current = all.find((d) => d.status === "succeeded");
  const { releaseOf } = await import("../lifecycle/pins.ts");
  const earlier = all.find(
    (d) => d.status === "succeeded" && current && d.id < current.id && releaseOf(d) !== releaseOf(current),
  );
  if (!earlier) {
    throw new GalleyError("ARGS_INVALID", `${app} has no earlier succeeded deployment to roll back to`, {
      hint: `galley deployments ${app} --stack ${stack.name}; name one with --to ID`,
    });
  }
  return earlier;
}

/**
 * After `galley stack up` or `galley instance start`: an app whose releases Galley makes and that
 * was never deployed gets its first deployment (cutover: every instance prepared, then switched),
 * a record like any other, so later instances join at its commit. Returns the deployments it ran.
 */
export async function firstDeployments(
  context: StackContext,
  options: Pick<DeployRequest, "signal" | "waitMs" | "user" | "onStep" | "log" | "onCreated" | "onPhase">,
): Promise<DeploymentDetail[]> {
  const { deploy } = await import("./controller.ts");
  const ran: DeploymentDetail[] = [];
  for (const app of context.stack.apps) {
    if (!app.release || (await context.store.deployedRevision(context.stack.name, app.name))) continue;
    const online = new Set(
      (await context.store.listInstances(context.stack.name))
        .filter((i) => i.status === "online")
        .map((i) => i.name),
    );
    if (
      !context.stack.instances.some((i) => online.has(i.name) && i.layers.some((l) => app.layers.includes(l)))
    )
      continue;
    options.log?.(`app ${app.name}: first deployment (cutover)`);
    ran.push(await deploy({ ...options, context, app: app.name, strategy: "cutover", params: {} }));
  }
  return ran;
}
