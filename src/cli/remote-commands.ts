import * as path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { exitCodes, GalleyError, type ErrorCode } from "../core/errors.ts";
import type { AbStatus } from "../deploy/ab-end.ts";
import type { StackAction, StackActionResult } from "../deploy/actions.ts";
import type { LifecycleOutcome, StackStatus } from "../lifecycle/status.ts";
import type { DeploymentDetail, DeploymentRecord, DeploymentStep, EventDetail } from "../store/store.ts";
import { deploymentAttributes, printPlan, recap, exitOf, stepLine } from "./deploy.ts";
import { printOutcome } from "./lifecycle-output.ts";
import { paint, writeJson } from "./output.ts";
import type { InstanceRuns } from "./lifecycle-commands.ts";
import type { Remote } from "./remote.ts";
import { printStatus } from "./stack.ts";

// The stack commands against a server (--server, $GALLEY_SERVER, galley login): the same output
// and exit codes as in a kitchen. Events and deployments run in the server; the CLI follows them
// until they end and prints what the local command prints.

/** How often a followed event or deployment is asked about. */
const pollMs = 1000;

interface BackgroundAction {
  status: "running" | "done" | "failed";
  exitCode?: number;
  result?: unknown;
  error?: { code: string; message: string; hint?: string };
}

/** The stack a command names, as the server serves it: NAME, or stacks/NAME.yaml → NAME. */
export function remoteStackName(arg: string | undefined, command: string): string {
  if (!arg)
    throw new GalleyError("USAGE", `galley ${command}: which stack?`, {
      hint: `name it: galley ${command} --stack production`,
    });
  return path.basename(arg).replace(/\.ya?ml$/, "");
}

const stackPath = (stack: string) => `/v1/stacks/${encodeURIComponent(stack)}`;

/** `galley stack up|down|status` against the server. */
export async function remoteStack(
  remote: Remote,
  subcommand: "up" | "down" | "status",
  stackArg: string | undefined,
  values: { json: boolean },
): Promise<number> {
  const stack = remoteStackName(stackArg, `stack ${subcommand}`);
  if (subcommand === "status") {
    const answer = await remote.request<{
      status: StackStatus | null;
      invalid?: { code: string; message: string };
    }>("GET", stackPath(stack));
    if (!answer.status)
      throw new GalleyError(
        (answer.invalid?.code ?? "STACK_INVALID") as ErrorCode,
        answer.invalid?.message ?? `stack ${stack} cannot be read`,
        {
          hint: "fix the stack file and PUT it again",
        },
      );
    printStatus(answer.status, values.json, stack);
    return exitCodes.ok;
  }
  return printResult(
    await remote.request<StackActionResult>("POST", `${stackPath(stack)}/${subcommand}`),
    values.json,
  );
}

function printResult(result: StackActionResult, json: boolean): number {
  if (!json) for (const detail of result.deployments) recap(detail);
  printOutcome(result.outcome, json);
  return result.exitCode;
}

/** `galley instance start|stop` and `galley run EVENT` against the server. */
export async function remoteAction(
  remote: Remote,
  stackArg: string | undefined,
  action: StackAction,
  values: { json: boolean },
): Promise<number> {
  const stack = remoteStackName(
    stackArg,
    action.kind === "event" ? "run" : action.kind === "recipes" ? "run-recipes" : `instance ${action.kind}`,
  );
  if (action.kind === "start" || action.kind === "stop") {
    // one instance per request; the outcome: the last one's instances, every request's events
    let merged: StackActionResult | undefined;
    for (const name of action.instances) {
      const result = await remote.request<StackActionResult>(
        "POST",
        `${stackPath(stack)}/instances/${encodeURIComponent(name)}/${action.kind}`,
      );
      merged = merged
        ? {
            outcome: { ...result.outcome, events: [...merged.outcome.events, ...result.outcome.events] },
            deployments: [...merged.deployments, ...result.deployments],
            exitCode: merged.exitCode || result.exitCode,
          }
        : result;
    }
    return printResult(merged!, values.json);
  }
  if (action.kind !== "event" && action.kind !== "recipes")
    throw new GalleyError("USAGE", `galley ${action.kind}: not available against a server`, {
      hint: "run it in the kitchen (--server local)",
    });
  const { id } = await remote.request<{ id: number }>("POST", `${stackPath(stack)}/events`, {
    ...(action.kind === "event"
      ? { kind: action.event, ...(action.app === undefined ? {} : { app: action.app }) }
      : { kind: "run-recipes", recipes: action.recipes }),
    ...(action.selection.layer === undefined ? {} : { layer: action.selection.layer }),
    ...(action.selection.instance === undefined ? {} : { instance: action.selection.instance }),
  });
  const out = (line: string) => process.stderr.write(`${line}\n`);
  out(paint("dim", `event #${id} runs on ${remote.context.server}`, process.stderr));
  for (;;) {
    const { event, action: run } = await remote.request<{ event: EventDetail; action?: BackgroundAction }>(
      "GET",
      `/v1/events/${id}`,
    );
    const ended = !["queued", "running"].includes(event.status);
    if (run?.status === "failed") throw remoteError(run);
    if (run?.status === "done" || (ended && run === undefined)) {
      const outcome =
        (run?.result as LifecycleOutcome | undefined) ?? (await outcomeOf(remote, stack, event));
      for (const e of outcome.events)
        for (const [name, o] of Object.entries(e.outcomes))
          out(
            `${name.padEnd(12)} ${e.kind} #${e.id} (state ${e.stateVersion}): ${o.status}${o.note ? ` (${o.note})` : ""}`,
          );
      printOutcome(outcome, values.json);
      return run?.exitCode ?? (event.status === "succeeded" ? exitCodes.ok : exitCodes.runFailed);
    }
    await sleep(pollMs);
  }
}

// an event another server process ran: its record, and the instances now
async function outcomeOf(remote: Remote, stack: string, event: EventDetail): Promise<LifecycleOutcome> {
  const { status } = await remote.request<{ status: StackStatus }>("GET", stackPath(stack));
  const { outcomes, ...record } = event;
  return {
    stack,
    stateVersion: status.stateVersion,
    instances: status.instances.map(({ updatedAt: _, ...i }) => ({ ...i, inService: true, weight: 1 })),
    events: [
      { ...record, outcomes: Object.fromEntries(outcomes.map((o) => [o.instance, { status: o.status }])) },
    ],
  };
}

function remoteError(run: BackgroundAction): GalleyError {
  return new GalleyError(
    (run.error?.code ?? "SERVER_FAILED") as ErrorCode,
    run.error?.message ?? "the server's run failed",
    {
      ...(run.error?.hint === undefined ? {} : { hint: run.error.hint }),
    },
  );
}

interface DeployValues {
  stack?: string;
  json: boolean;
  revision?: string;
  strategy?: string;
  batch?: string;
  "max-unavailable"?: string;
  "max-fail"?: string;
  attrs?: string;
  plan?: boolean;
  to?: string;
  ab?: string;
  deadline?: string;
  forks?: string;
  wait?: string;
}

function runFields(values: DeployValues): Record<string, string> {
  const body: Record<string, string> = {};
  for (const key of [
    "strategy",
    "batch",
    "max-unavailable",
    "max-fail",
    "deadline",
    "forks",
    "wait",
  ] as const)
    if (values[key] !== undefined) body[key] = values[key];
  return body;
}

/** `galley deploy APP` against the server. */
export async function remoteDeploy(remote: Remote, app: string, values: DeployValues): Promise<number> {
  const stack = remoteStackName(values.stack, "deploy");
  const attributes = await deploymentAttributes(values.attrs);
  const body = {
    app,
    ...runFields(values),
    ...(values.revision === undefined ? {} : { revision: values.revision }),
    ...(values.ab === undefined ? {} : { ab: values.ab }),
    ...(attributes ? { attributes: attributes.values } : {}),
    ...(values.plan ? { plan: true } : {}),
  };
  const answer = await remote.request<{ id?: number; plan?: unknown }>(
    "POST",
    `${stackPath(stack)}/deployments`,
    body,
  );
  if (answer.plan !== undefined) {
    printPlan(answer.plan as Parameters<typeof printPlan>[0], values.json);
    return exitCodes.ok;
  }
  return followDeployment(remote, answer.id!, values.json);
}

/** `galley rollback APP [--to ID]` against the server. */
export async function remoteRollback(remote: Remote, app: string, values: DeployValues): Promise<number> {
  const stack = remoteStackName(values.stack, "rollback");
  const { id } = await remote.request<{ id: number }>(
    "POST",
    `${stackPath(stack)}/apps/${encodeURIComponent(app)}/rollback`,
    { ...runFields(values), ...(values.to === undefined ? {} : { to: values.to }) },
  );
  return followDeployment(remote, id, values.json);
}

/** `galley deployment resume ID` against the server. */
export async function remoteResume(remote: Remote, id: string, values: DeployValues): Promise<number> {
  await remoteDeploymentShow(remote, values.stack, id);
  const answer = await remote.request<{ id: number }>("POST", `/v1/deployments/${deploymentId(id)}/resume`);
  return followDeployment(remote, answer.id, values.json);
}

/** `galley deployments [APP]` against the server. */
export async function remoteDeployments(
  remote: Remote,
  stackArg: string | undefined,
  app: string | undefined,
  limit: number,
): Promise<{ stack: string; deployments: DeploymentRecord[] }> {
  const stack = remoteStackName(stackArg, "deployments");
  const query = new URLSearchParams({ limit: String(limit), ...(app ? { app } : {}) });
  return remote.request("GET", `${stackPath(stack)}/deployments?${query}`);
}

/** `galley deployment show ID` against the server: the deployment, if it is the stack's. */
export async function remoteDeploymentShow(
  remote: Remote,
  stackArg: string | undefined,
  id: string,
): Promise<DeploymentDetail> {
  const stack = remoteStackName(stackArg, "deployment show");
  const { deployment } = await remote
    .request<{ deployment: DeploymentDetail }>("GET", `/v1/deployments/${deploymentId(id)}`)
    .catch((error: unknown) => {
      if (error instanceof GalleyError && error.code === "NOT_FOUND") return { deployment: undefined };
      throw error;
    });
  if (!deployment || deployment.stack !== stack)
    throw new GalleyError("ARGS_INVALID", `stack ${stack} has no deployment #${id}`, {
      hint: `galley deployments --stack ${stack} lists them`,
    });
  return deployment;
}

function deploymentId(id: string): number {
  const n = Number(id.replace(/^#/, ""));
  if (!Number.isSafeInteger(n) || n < 1)
    throw new GalleyError("USAGE", `${id}: a deployment id is a whole number`, {
      hint: "galley deployment show 3",
    });
  return n;
}

/** Follows a deployment the server runs: its steps on stderr as they end, then the local command's output. */
export async function followDeployment(remote: Remote, id: number, json: boolean): Promise<number> {
  const seen = new Set<string>();
  const out = (line: string) => process.stderr.write(`${line}\n`);
  out(paint("dim", `deployment #${id} runs on ${remote.context.server}`, process.stderr));
  for (;;) {
    const { deployment, action } = await remote.request<{
      deployment: DeploymentDetail;
      action?: BackgroundAction;
    }>("GET", `/v1/deployments/${id}`);
    for (const step of deployment.steps) {
      const key = stepKey(step);
      if (step.status !== "running" && !seen.has(key)) {
        seen.add(key);
        out(stepLine(step));
      }
    }
    if (action?.status === "failed") throw remoteError(action);
    const ended = !["pending", "running"].includes(deployment.status);
    if (ended && action?.status !== "running") {
      if (json) writeJson({ deployment });
      else recap(deployment);
      return exitOf(deployment);
    }
    await sleep(pollMs);
  }
}

function stepKey(step: DeploymentStep): string {
  return `${step.instance}\u0000${step.batch}\u0000${step.phase}\u0000${step.startedAt}\u0000${step.status}`;
}

/** `galley history` against the server: the stack's events (or one), each in full. */
export async function remoteHistory(
  remote: Remote,
  stackArg: string | undefined,
  options: { limit: number; event?: string | undefined },
): Promise<{ stack: string; events: EventDetail[] }> {
  const stack = remoteStackName(stackArg, "history");
  const ids =
    options.event !== undefined
      ? [Number(options.event)]
      : (
          await remote.request<{ events: { id: number }[] }>(
            "GET",
            `${stackPath(stack)}/events?limit=${options.limit}`,
          )
        ).events.map((e) => e.id);
  const events: EventDetail[] = [];
  for (const id of ids) {
    const event = Number.isSafeInteger(id) && id > 0 ? await eventOf(remote, id) : undefined;
    if (!event || event.stack !== stack)
      throw new GalleyError("ARGS_INVALID", `stack ${stack} has no event #${options.event ?? id}`, {
        hint: `galley history --stack ${stack} lists them`,
      });
    events.push(event);
  }
  return { stack, events };
}

async function eventOf(remote: Remote, id: number): Promise<EventDetail | undefined> {
  return remote
    .request<{ event: EventDetail }>("GET", `/v1/events/${id}`)
    .then((answer) => answer.event)
    .catch((error: unknown) => {
      if (error instanceof GalleyError && error.code === "NOT_FOUND") return undefined;
      throw error;
    });
}

/** `galley instance runs NAME` against the server: the agent's runs, newest first. */
export async function remoteInstanceRuns(
  remote: Remote,
  stackArg: string | undefined,
  instance: string,
  options: { limit: number; report: boolean },
): Promise<InstanceRuns> {
  const stack = remoteStackName(stackArg, "instance runs");
  const query = new URLSearchParams({
    limit: String(options.limit),
    ...(options.report ? { report: "1" } : {}),
  });
  const answer = await remote
    .request<InstanceRuns & { agent?: unknown }>(
      "GET",
      `${stackPath(stack)}/instances/${encodeURIComponent(instance)}/runs?${query}`,
    )
    .catch((error: unknown) => {
      // as in the kitchen: an instance the stack does not have is the command's argument's fault
      if (error instanceof GalleyError && error.code === "NOT_FOUND" && /has no instance/.test(error.message))
        throw new GalleyError("ARGS_INVALID", `stack ${stack} has no instance ${instance}`, {
          hint: `galley stack status ${stack} lists them`,
        });
      throw error;
    });
  return { stack: answer.stack, instance: answer.instance, runs: answer.runs };
}

/** `galley ab promote|abort APP` against the server: the deployment, followed to its end. */
export async function remoteAbEnd(
  remote: Remote,
  end: "promote" | "abort",
  app: string,
  values: DeployValues,
): Promise<number> {
  const stack = remoteStackName(values.stack, `ab ${end}`);
  const { id } = await remote.request<{ id: number }>(
    "POST",
    `${stackPath(stack)}/apps/${encodeURIComponent(app)}/ab/${end}`,
    runFields(values),
  );
  return followDeployment(remote, id, values.json);
}

/** `galley ab status APP` against the server. */
export async function remoteAbStatus(
  remote: Remote,
  stackArg: string | undefined,
  app: string,
): Promise<AbStatus> {
  const stack = remoteStackName(stackArg, "ab status");
  return (
    await remote.request<{ ab: AbStatus }>("GET", `${stackPath(stack)}/apps/${encodeURIComponent(app)}/ab`)
  ).ab;
}
