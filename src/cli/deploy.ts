import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isPlainObject } from "../core/attributes.ts";
import { exitCodes, GalleyError } from "../core/errors.ts";
import { decodeYamlText, loadYaml } from "../core/yaml.ts";
import type { DeployRequest } from "../deploy/controller.ts";
import type { StrategyParams } from "../deploy/strategies/index.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { DeploymentDetail, DeploymentRecord, DeploymentStep } from "../store/store.ts";
import { stackFile, stackOptions } from "./lifecycle-output.ts";
import { waitMs } from "./options.ts";
import { paint, write, writeJson } from "./output.ts";
import { trapInterrupts } from "./signals.ts";

// galley deploy / deployments / deployment show / rollback: deployments as records, run by the
// rollout controller (src/deploy/controller.ts). cli/ parses, calls and prints.

interface Values {
  stack?: string;
  forks?: string;
  wait?: string;
  json: boolean;
  revision?: string;
  strategy?: string;
  batch?: string;
  "max-unavailable"?: string;
  "max-fail"?: string;
  attrs?: string;
  plan?: boolean;
  to?: string;
  limit?: string;
  ab?: string;
  "key-file"?: string;
  deadline?: string;
}

const strategyOptions = {
  strategy: {
    type: "string",
    description: "cutover, pilot, parallel or rolling (default rolling; a rollback: the deployment's own)",
  },
  batch: { type: "string", description: "instances per batch: N or N% (pilot, rolling)" },
  "max-unavailable": { type: "string", description: "at most N (or N%) instances out of service at once" },
  "max-fail": {
    type: "string",
    description: "failed instances tolerated over the deployment: N or N% (default 0)",
  },
  deadline: {
    type: "string",
    description:
      "seconds one batch may take before its runs stop and the deployment rolls back (default 600)",
  },
} as const;

/** Runs `fn` with the stack of `--stack`, closing its store after. */
export async function withStack<T>(
  values: Values,
  command: string,
  fn: (context: StackContext) => Promise<T>,
): Promise<T> {
  const { openStack } = await import("../lifecycle/context.ts");
  // listing and showing deployments only read the store: no key needed
  const reads = command === "deployments" || command === "deployment show";
  const context = await openStack(stackFile(values.stack, command), {
    checkRecipes: !reads,
    decrypt: !reads,
    keyFile: values["key-file"],
  });
  try {
    return await fn(context);
  } finally {
    await context.store.close();
  }
}

async function strategyParams(values: Values): Promise<StrategyParams> {
  const { parseSize } = await import("../deploy/strategies/sizes.ts");
  return {
    batch: values.batch === undefined ? undefined : parseSize("--batch", values.batch, 1),
    maxUnavailable:
      values["max-unavailable"] === undefined
        ? undefined
        : parseSize("--max-unavailable", values["max-unavailable"], 1),
    maxFail: values["max-fail"] === undefined ? undefined : parseSize("--max-fail", values["max-fail"], 0),
  };
}

// --attrs FILE: the deployment's custom JSON (YAML or JSON), an object
async function deploymentAttributes(file: string | undefined): Promise<DeployRequest["attributes"]> {
  if (file === undefined) return undefined;
  const resolved = path.resolve(file);
  const bytes = await fs.readFile(resolved).catch(() => {
    throw new GalleyError("FILE_NOT_FOUND", `--attrs ${file}: no such file`, {
      hint: "give a YAML or JSON file",
    });
  });
  const text = decodeYamlText(resolved, bytes, { code: "ATTRIBUTES_INVALID" });
  const { value } = loadYaml(resolved, text, { code: "ATTRIBUTES_INVALID" });
  if (value === undefined || value === null) return undefined;
  if (!isPlainObject(value)) {
    throw new GalleyError("ATTRIBUTES_INVALID", `${resolved}: expected a mapping of attributes at the top`, {
      hint: "e.g. app: { workers: 4 }",
    });
  }
  return { label: `--attrs ${file}`, values: value as Record<string, unknown> };
}

function stepLine(step: DeploymentStep): string {
  const status =
    step.status === "succeeded"
      ? paint("green", "ok", process.stderr)
      : step.status === "failed"
        ? paint("red", "failed", process.stderr)
        : step.status;
  const first = (step.log ?? "").split("\n")[0];
  return `${step.instance.padEnd(12)} batch ${step.batch + 1}  ${step.phase.padEnd(8)} ${status}${step.status === "failed" && first ? `  ${first}` : ""}`;
}

/** Per-step progress lines and the deployment's news on stderr. */
export function progress(): Pick<DeployRequest, "onStep" | "log"> {
  const out = (line: string) => process.stderr.write(`${line}\n`);
  return {
    log: (line) => out(paint("dim", line, process.stderr)),
    // a step's end, not its start: one line per instance and step
    onStep: (step) => {
      if (step.status !== "running") out(stepLine(step));
    },
  };
}

/** A deployment's one-screen summary: status, note, where each instance ended. */
export function recap(detail: DeploymentDetail): void {
  const status = detail.status === "succeeded" ? paint("green", detail.status) : paint("red", detail.status);
  write(
    `${paint("bold", `deployment #${detail.id}`)} ${detail.app} ${detail.revision.slice(0, 12)} (${detail.requested})  ${detail.strategy}  ${status}\n`,
  );
  if (detail.note) write(`  ${detail.note}\n`);
  const last = new Map<string, DeploymentStep>();
  for (const step of detail.steps) if (step.status !== "running") last.set(step.instance, step);
  for (const [instance, step] of last) {
    write(
      `  ${instance.padEnd(12)} ${step.phase.padEnd(8)} ${step.status}${step.release ? `  release ${step.release}` : ""}\n`,
    );
  }
}

/** A deployment's exit code: 0 succeeded, 130 interrupted, else 1. */
export function exitOf(detail: DeploymentRecord): number {
  if (detail.status === "succeeded") return exitCodes.ok;
  if (detail.status === "interrupted") return 130;
  return exitCodes.runFailed;
}

async function runDeployment(values: Values, context: StackContext, request: Omit<DeployRequest, "context">) {
  const { deploy, planDeployment } = await import("../deploy/controller.ts");
  const full: DeployRequest = { ...request, context };
  if (values.plan) {
    const plan = await planDeployment(full);
    if (values.json) writeJson({ plan });
    else {
      write(`${paint("bold", `galley deploy ${plan.app} --plan`)}: changes nothing\n`);
      write(
        `  revision ${plan.revision} (${plan.requested}), ${plan.strategy}${Object.entries(plan.params)
          .map(([k, v]) => ` ${k} ${v}`)
          .join("")}\n`,
      );
      write(`  load balancer: ${plan.loadBalancer ?? "none (instances are not drained)"}\n`);
      if (plan.plan.prepareFirst)
        write("  1. prepare the release on every instance (nothing switches until all are ready)\n");
      if (plan.migrate) write("  then: migrate once, on the first prepared instance, before any switch\n");
      for (const [i, batch] of plan.plan.batches.entries()) {
        const steps = [
          ...(plan.plan.drain && plan.loadBalancer ? ["drain"] : []),
          ...(plan.plan.prepareFirst ? [] : ["prepare"]),
          "switch",
          "health check",
          ...(plan.plan.drain && plan.loadBalancer ? ["back in service"] : []),
        ];
        write(`  batch ${i + 1}: ${batch.join(", ")}: ${steps.join(" → ")}\n`);
      }
      write(
        `  stops and rolls back after ${plan.plan.allOrNothing ? "any failure (all or nothing)" : `more than ${plan.plan.maxFail} failed instance${plan.plan.maxFail === 1 ? "" : "s"}`}\n`,
      );
    }
    return exitCodes.ok;
  }
  const { parseDeadline } = await import("../deploy/deadline.ts");
  const deadlineMs = parseDeadline(values.deadline);
  const trap = trapInterrupts();
  try {
    const detail = await deploy({ ...full, deadlineMs, signal: trap.signal, ...progress() });
    if (values.json) writeJson({ deployment: detail });
    else recap(detail);
    return trap.exitCode() ?? exitOf(detail);
  } finally {
    trap.dispose();
  }
}

/** `galley deploy APP --stack S …`. */
export const deployCommand = {
  summary:
    "deploy an app to its instances with a strategy: releases, migrations, health checks, automatic rollback",
  usage:
    "APP --stack STACK [--revision R] [--strategy cutover|pilot|parallel|rolling] [--batch N|N%] [--max-unavailable N|N%] [--max-fail N|N%] [--ab N%] [--deadline SECONDS] [--attrs FILE] [--plan] [--json]",
  options: {
    ...stackOptions,
    ...strategyOptions,
    revision: {
      type: "string",
      short: "r",
      description: "a branch, tag or commit (default: the stack file's)",
    },
    attrs: { type: "string", description: "this deployment's custom JSON (YAML or JSON file), kept with it" },
    ab: {
      type: "string",
      description:
        "an A/B deployment: the revision on the fewest instances that carry N% of requests, by load-balancer weights (then galley ab promote|abort)",
    },
    plan: {
      type: "boolean",
      default: false,
      description: "print the batches and what each would do; change nothing",
    },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [app, ...rest] = positionals;
    if (!app || rest.length > 0)
      throw new GalleyError("USAGE", "galley deploy: which app?", {
        hint: "galley deploy hello --stack webapp",
      });
    const params = await strategyParams(values);
    const attributes = await deploymentAttributes(values.attrs);
    const ab = values.ab === undefined ? undefined : abShare(values.ab);
    return withStack(values, "deploy", (context) =>
      runDeployment(values, context, {
        app,
        revision: values.revision,
        strategy: values.strategy ?? (ab === undefined ? "rolling" : "ab"),
        ab,
        params,
        attributes,
        forks: values.forks ? Number(values.forks) : undefined,
        waitMs: waitMs(values),
      }),
    );
  },
};

// --ab N%: B's share of requests, a whole percentage from 1 to 99
function abShare(text: string): number {
  const match = /^(\d{1,2})%?$/.exec(text.trim());
  const value = match ? Number(match[1]) : Number.NaN;
  if (!match || value < 1 || value > 99) {
    throw new GalleyError("USAGE", `--ab ${text}: B's share is a whole percentage from 1% to 99%`, {
      hint: "e.g. --ab 10%",
    });
  }
  return value;
}

/** `galley rollback APP --stack S [--to ID]`. */
export const rollbackCommand = {
  summary: "deploy again what an earlier deployment deployed (default: the one before the current)",
  usage: "APP --stack STACK [--to ID] [--strategy …] [--batch …] [--deadline SECONDS] [--json]",
  options: {
    ...stackOptions,
    ...strategyOptions,
    to: { type: "string", description: "the deployment to go back to (default: the one before the current)" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [app, ...rest] = positionals;
    if (!app || rest.length > 0)
      throw new GalleyError("USAGE", "galley rollback: which app?", {
        hint: "galley rollback hello --stack webapp",
      });
    const params = await strategyParams(values);
    return withStack(values, "rollback", async (context) => {
      const target = await rollbackTarget(context, app, values.to);
      return runDeployment(values, context, {
        app,
        strategy: values.strategy ?? target.strategy,
        params,
        rollbackOf: target,
        forks: values.forks ? Number(values.forks) : undefined,
        waitMs: waitMs(values),
      });
    });
  },
};

async function rollbackTarget(
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
        {
          hint: `galley deployments ${app} --stack ${context.file} lists them`,
        },
      );
    }
    return found;
  }
  const all = await store.listDeployments(stack.name, { app, limit: 200 });
  const current = all.find((d) => d.status === "succeeded");
  const { releaseOf } = await import("../deploy/controller.ts");
  const earlier = all.find(
    (d) => d.status === "succeeded" && current && d.id < current.id && releaseOf(d) !== releaseOf(current),
  );
  if (!earlier) {
    throw new GalleyError("ARGS_INVALID", `${app} has no earlier succeeded deployment to roll back to`, {
      hint: `galley deployments ${app} --stack ${context.file}; name one with --to ID`,
    });
  }
  return earlier;
}

/** `galley deployments [APP] --stack S`. */
export const deploymentsCommand = {
  summary: "a stack's deployments, newest first (of one app, or all)",
  usage: "[APP] --stack STACK [--limit N] [--json]",
  options: { ...stackOptions, limit: { type: "string", description: "how many (default 20)" } } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [app] = positionals;
    return withStack(values, "deployments", async (context) => {
      const list = await context.store.listDeployments(context.stack.name, {
        ...(app ? { app } : {}),
        limit: values.limit ? Number(values.limit) : 20,
      });
      if (values.json) {
        writeJson({ stack: context.stack.name, deployments: list });
        return exitCodes.ok;
      }
      if (list.length === 0)
        write(`no deployments${app ? ` of ${app}` : ""} in stack ${context.stack.name}\n`);
      for (const d of list) {
        write(
          `${paint("bold", `#${d.id}`)} ${d.app.padEnd(10)} ${d.revision.slice(0, 12)} ${d.status.padEnd(12)} ${d.strategy.padEnd(9)} ${d.createdAt}  ${d.user}${d.rollbackOf ? `  rollback to #${d.rollbackOf}` : ""}${d.strategy === "ab" ? `  A/B ${String(d.params.share)} on ${String(d.params.instances)}` : ""}${d.requested.includes("A/B") ? `  ${d.requested}` : ""}\n`,
        );
      }
      return exitCodes.ok;
    });
  },
};

/** `galley deployment show|resume ID --stack S`. */
export const deploymentCommand = {
  summary:
    "one deployment in full (show: each instance's steps, batch by batch, with logs), or finish one its process left (resume)",
  usage: "show|resume ID --stack STACK [--json]",
  options: stackOptions,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [action, id, ...rest] = positionals;
    if ((action !== "show" && action !== "resume") || id === undefined || rest.length > 0)
      throw new GalleyError("USAGE", "galley deployment show|resume ID", {
        hint: "galley deployment show 3 --stack webapp",
      });
    if (action === "resume") {
      return withStack(values, "deployment resume", async (context) => {
        const { resumeDeployment } = await import("../deploy/controller.ts");
        const trap = trapInterrupts();
        try {
          const detail = await resumeDeployment({
            context,
            id: Number(id.replace(/^#/, "")),
            signal: trap.signal,
            waitMs: waitMs(values),
            forks: values.forks ? Number(values.forks) : undefined,
            ...progress(),
          });
          if (values.json) writeJson({ deployment: detail });
          else recap(detail);
          return trap.exitCode() ?? exitOf(detail);
        } finally {
          trap.dispose();
        }
      });
    }
    return withStack(values, "deployments", async (context) => {
      const detail = await context.store.getDeployment(Number(id.replace(/^#/, "")));
      if (!detail || detail.stack !== context.stack.name)
        throw new GalleyError("ARGS_INVALID", `stack ${context.stack.name} has no deployment #${id}`, {
          hint: `galley deployments --stack ${context.file} lists them`,
        });
      if (values.json) {
        writeJson({ deployment: detail });
        return exitCodes.ok;
      }
      recap(detail);
      write(
        `  revision ${detail.revision}  bundle ${detail.bundle ?? "-"}  by ${detail.user}  ${detail.createdAt} → ${detail.finishedAt ?? "…"}\n`,
      );
      write(`  parameters ${JSON.stringify(detail.params)}  migration ${detail.migration}\n`);
      let batch = -1;
      for (const step of detail.steps) {
        if (step.status === "running") continue;
        if (step.batch !== batch) {
          batch = step.batch;
          write(`  ${paint("bold", `batch ${batch + 1}`)}\n`);
        }
        write(
          `    ${step.instance.padEnd(12)} ${step.phase.padEnd(8)} ${step.status.padEnd(9)} ${step.startedAt}\n`,
        );
        if (step.log) write(`${step.log.replace(/^/gm, "        ")}\n`);
      }
      return exitCodes.ok;
    });
  },
};

/**
 * After `galley stack up` or `galley instance start`: an app whose releases Galley makes and that
 * was never deployed gets its first deployment (cutover: every instance prepared, then switched),
 * a record like any other, so later instances join at its commit. Returns its exit code (0 when none ran).
 */
export async function firstDeployments(
  context: StackContext,
  options: { json: boolean; signal?: AbortSignal | undefined; waitMs?: number | undefined },
): Promise<number> {
  const { deploy } = await import("../deploy/controller.ts");
  let code: number = exitCodes.ok;
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
    process.stderr.write(`${paint("dim", `app ${app.name}: first deployment (cutover)`, process.stderr)}\n`);
    const detail = await deploy({
      context,
      app: app.name,
      strategy: "cutover",
      params: {},
      signal: options.signal,
      waitMs: options.waitMs,
      ...progress(),
    });
    if (!options.json) recap(detail);
    if (detail.status !== "succeeded") code = exitOf(detail);
  }
  return code;
}
