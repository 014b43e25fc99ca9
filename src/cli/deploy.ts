import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isPlainObject } from "../core/attributes.ts";
import { exitCodes, GalleyError } from "../core/errors.ts";
import { decodeYamlText, loadYaml } from "../core/yaml.ts";
import type { StackActionOptions } from "../deploy/actions.ts";
import { deploymentExitCode } from "../deploy/actions.ts";
import { deployRequestOf, rollbackRequestOf } from "../deploy/ask.ts";
import { type RunFeed, withRunFeed } from "../deploy/feed.ts";
import type { DeploymentPlan, DeployRequest } from "../deploy/controller.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { DeploymentDetail, DeploymentRecord, DeploymentStep } from "../store/store.ts";
import { remoteStackOptions, stackFile } from "./lifecycle-output.ts";
import { waitMs } from "./options.ts";
import { paint, write, writeJson } from "./output.ts";
import { remoteFor } from "./remote.ts";
import { trapInterrupts } from "./signals.ts";

// galley deploy / deployments / deployment show / rollback: deployments as records, run by the
// rollout controller (src/deploy/controller.ts). cli/ parses, calls and prints.

interface Values {
  server?: string;
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

// --attrs FILE: the deployment's custom JSON (YAML or JSON), an object
export async function deploymentAttributes(file: string | undefined): Promise<DeployRequest["attributes"]> {
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

export function stepLine(step: DeploymentStep): string {
  const status =
    step.status === "succeeded"
      ? paint("green", "ok", process.stderr)
      : step.status === "failed"
        ? paint("red", "failed", process.stderr)
        : step.status;
  const first = (step.log ?? "").split("\n")[0];
  return `${step.instance.padEnd(12)} batch ${step.batch + 1}  ${step.phase.padEnd(8)} ${status}${step.status === "failed" && first ? `  ${first}` : ""}`;
}

/**
 * Runs `fn` with a feed for the stack's run: its progress shows live in the web panel of a server
 * on the same kitchen too. The feed's entries are written before `fn`'s promise settles.
 */
export function withFeed<T>(context: StackContext, fn: (feed: RunFeed) => Promise<T>): Promise<T> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  return withRunFeed({ store: context.store, log }, context.stack.name, fn);
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
  return deploymentExitCode(detail);
}

/** How `galley stack up` / `instance start` show the first deployments they run. */
export function deploymentProgress(json: boolean): NonNullable<StackActionOptions["deployments"]> {
  return { ...progress(), onDeployment: (detail) => (json ? undefined : recap(detail)) };
}

/** Prints a deployment's plan (galley deploy --plan). */
export function printPlan(plan: DeploymentPlan, json: boolean): void {
  if (json) {
    writeJson({ plan });
    return;
  }
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

async function runDeployment(values: Values, context: StackContext, request: Omit<DeployRequest, "context">) {
  const { deploy, planDeployment } = await import("../deploy/controller.ts");
  const full: DeployRequest = { ...request, context };
  if (values.plan) {
    printPlan(await planDeployment(full), values.json);
    return exitCodes.ok;
  }
  const trap = trapInterrupts();
  try {
    const detail = await withFeed(context, (feed) =>
      deploy(feed.deployment({ ...full, signal: trap.signal, ...progress() })),
    );
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
    ...remoteStackOptions,
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
    const remote = await remoteFor(values);
    if (remote) {
      const { remoteDeploy } = await import("./remote-commands.ts");
      return remoteDeploy(remote, app, values);
    }
    const request = await deployRequestOf(app, {
      ...values,
      attributes: await deploymentAttributes(values.attrs),
    });
    return withStack(values, "deploy", (context) => runDeployment(values, context, request));
  },
};

/** `galley rollback APP --stack S [--to ID]`. */
export const rollbackCommand = {
  summary: "deploy again what an earlier deployment deployed (default: the one before the current)",
  usage: "APP --stack STACK [--to ID] [--strategy …] [--batch …] [--deadline SECONDS] [--json]",
  options: {
    ...remoteStackOptions,
    ...strategyOptions,
    to: { type: "string", description: "the deployment to go back to (default: the one before the current)" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [app, ...rest] = positionals;
    if (!app || rest.length > 0)
      throw new GalleyError("USAGE", "galley rollback: which app?", {
        hint: "galley rollback hello --stack webapp",
      });
    const remote = await remoteFor(values);
    if (remote) {
      const { remoteRollback } = await import("./remote-commands.ts");
      return remoteRollback(remote, app, values);
    }
    return withStack(values, "rollback", async (context) =>
      runDeployment(values, context, await rollbackRequestOf(context, app, values)),
    );
  },
};

/** `galley deployments [APP] --stack S`. */
export const deploymentsCommand = {
  summary: "a stack's deployments, newest first (of one app, or all)",
  usage: "[APP] --stack STACK [--limit N] [--json]",
  options: {
    ...remoteStackOptions,
    limit: { type: "string", description: "how many (default 20)" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [app] = positionals;
    const limit = values.limit ? Number(values.limit) : 20;
    const remote = await remoteFor(values);
    if (remote) {
      const { remoteDeployments } = await import("./remote-commands.ts");
      const list = await remoteDeployments(remote, values.stack, app, limit);
      printDeployments(list.stack, list.deployments, app, values.json);
      return exitCodes.ok;
    }
    return withStack(values, "deployments", async (context) => {
      const list = await context.store.listDeployments(context.stack.name, {
        ...(app ? { app } : {}),
        limit,
      });
      printDeployments(context.stack.name, list, app, values.json);
      return exitCodes.ok;
    });
  },
};

/** `galley deployments`' output, local or from a server. */
export function printDeployments(
  stack: string,
  list: readonly DeploymentRecord[],
  app: string | undefined,
  json: boolean,
): void {
  if (json) {
    writeJson({ stack, deployments: list });
    return;
  }
  if (list.length === 0) write(`no deployments${app ? ` of ${app}` : ""} in stack ${stack}\n`);
  for (const d of list) {
    write(
      `${paint("bold", `#${d.id}`)} ${d.app.padEnd(10)} ${d.revision.slice(0, 12)} ${d.status.padEnd(12)} ${d.strategy.padEnd(9)} ${d.createdAt}  ${d.user}${d.rollbackOf ? `  rollback to #${d.rollbackOf}` : ""}${d.strategy === "ab" ? `  A/B ${String(d.params.share)} on ${String(d.params.instances)}` : ""}${d.requested.includes("A/B") ? `  ${d.requested}` : ""}\n`,
    );
  }
}

/** `galley deployment show|resume ID --stack S`. */
export const deploymentCommand = {
  summary:
    "one deployment in full (show: each instance's steps, batch by batch, with logs), or finish one its process left (resume)",
  usage: "show|resume ID --stack STACK [--json]",
  options: remoteStackOptions,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [action, id, ...rest] = positionals;
    if ((action !== "show" && action !== "resume") || id === undefined || rest.length > 0)
      throw new GalleyError("USAGE", "galley deployment show|resume ID", {
        hint: "galley deployment show 3 --stack webapp",
      });
    const remote = await remoteFor(values);
    if (remote) {
      const { remoteDeploymentShow, remoteResume } = await import("./remote-commands.ts");
      if (action === "resume") return remoteResume(remote, id, values);
      printDeployment(await remoteDeploymentShow(remote, values.stack, id), values.json);
      return exitCodes.ok;
    }
    if (action === "resume") {
      return withStack(values, "deployment resume", async (context) => {
        const { resumeDeployment } = await import("../deploy/controller.ts");
        const trap = trapInterrupts();
        try {
          const detail = await withFeed(context, (feed) =>
            resumeDeployment(
              feed.deployment({
                context,
                id: Number(id.replace(/^#/, "")),
                signal: trap.signal,
                waitMs: waitMs(values),
                forks: values.forks ? Number(values.forks) : undefined,
                ...progress(),
              }),
            ),
          );
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
      printDeployment(detail, values.json);
      return exitCodes.ok;
    });
  },
};

/** `galley deployment show`'s output, local or from a server. */
export function printDeployment(detail: DeploymentDetail, json: boolean): void {
  if (json) {
    writeJson({ deployment: detail });
    return;
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
}
