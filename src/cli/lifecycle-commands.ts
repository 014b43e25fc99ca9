import { exitCodes, GalleyError } from "../core/errors.ts";
import type { StackAction } from "../deploy/actions.ts";
import type { AgentRunRecord, EventDetail } from "../store/store.ts";
import { lifecycleEvents } from "../stacks/schema.ts";
import { deploymentProgress } from "./deploy.ts";
import { printOutcome, progressOptions, remoteStackOptions, stackFile } from "./lifecycle-output.ts";
import { paint, write, writeJson } from "./output.ts";
import { remoteFor } from "./remote.ts";
import { trapInterrupts } from "./signals.ts";

interface Values {
  server?: string;
  stack?: string;
  forks?: string;
  "key-file"?: string;
  json: boolean;
  layer?: string;
  instance?: string;
  app?: string;
  limit?: string;
  event?: string;
  wait?: string;
  report?: boolean;
}

const selectOptions = {
  layer: { type: "string", short: "l", description: "only the online instances of this layer" },
  instance: { type: "string", short: "n", description: "only this (online) instance" },
} as const;

// opens the stack, runs the action, prints the outcome, closes the store
async function withLifecycle(values: Values, command: string, action: StackAction): Promise<number> {
  const remote = await remoteFor(values);
  if (remote) {
    const { remoteAction } = await import("./remote-commands.ts");
    return remoteAction(remote, values.stack, action, values);
  }
  const [{ openStack }, { runStackActionFed }] = await Promise.all([
    import("../lifecycle/context.ts"),
    import("../deploy/feed.ts"),
  ]);
  const context = await openStack(stackFile(values.stack, command), { keyFile: values["key-file"] });
  const trap = trapInterrupts();
  try {
    // the run shows in the stack's feed too: live in the web panel of a server on this kitchen
    const feed = { log: (line: string) => process.stderr.write(`${line}\n`) };
    const result = await runStackActionFed(feed, context, action, {
      ...progressOptions(values.json, values.forks, { wait: values.wait, signal: trap.signal }),
      deployments: deploymentProgress(values.json),
    });
    printOutcome(result.outcome, values.json);
    return trap.exitCode() ?? result.exitCode;
  } finally {
    trap.dispose();
    await context.store.close();
  }
}

function selection(values: Values) {
  if (values.layer !== undefined && values.instance !== undefined) {
    throw new GalleyError("USAGE", "give --layer or --instance, not both", {
      hint: "--layer app runs on every online app instance; --instance app1 on that one",
    });
  }
  return { layer: values.layer, instance: values.instance };
}

/** `galley instance start|stop NAME… --stack S`, `galley instance runs NAME --stack S`. */
export const instanceCommand = {
  summary:
    "start instances (host, setup, deploy, online, configure everywhere) or stop them; runs: an agent instance's own runs (drift)",
  usage:
    "start|stop NAME… --stack STACK [--forks N] [--json] | runs NAME --stack STACK [--limit N] [--report] [--json]",
  options: {
    ...remoteStackOptions,
    limit: { type: "string", description: "runs: how many, newest first (default 20)" },
    report: { type: "boolean", default: false, description: "runs --json: each run's report too" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [action, ...names] = positionals;
    if (action !== "start" && action !== "stop" && action !== "runs") {
      throw new GalleyError(
        "USAGE",
        action ? `galley instance: unknown subcommand "${action}"` : "galley instance: start, stop or runs?",
        {
          hint: "galley instance start app4 --stack webapp",
        },
      );
    }
    if (names.length === 0)
      throw new GalleyError("USAGE", `galley instance ${action}: which instances?`, {
        hint: `galley instance ${action} app1 --stack webapp`,
      });
    if (action === "runs") {
      if (names.length > 1)
        throw new GalleyError("USAGE", "galley instance runs: one instance at a time", {
          hint: "galley instance runs app1 --stack webapp",
        });
      return instanceRuns(values, names[0]!);
    }
    return withLifecycle(values, `instance ${action}`, { kind: action, instances: names });
  },
};

/** What `galley instance runs --json` prints, from the kitchen's store or from a server. */
export interface InstanceRuns {
  stack: string;
  instance: string;
  runs: (Omit<AgentRunRecord, "stack" | "instance" | "report"> & { report?: unknown })[];
}

async function instanceRuns(values: Values, instance: string): Promise<number> {
  const limit = limitOf(values.limit);
  const remote = await remoteFor(values);
  let answer: InstanceRuns;
  if (remote) {
    const { remoteInstanceRuns } = await import("./remote-commands.ts");
    answer = await remoteInstanceRuns(remote, values.stack, instance, {
      limit,
      report: values.report === true,
    });
  } else {
    const { openStack } = await import("../lifecycle/context.ts");
    const context = await openStack(stackFile(values.stack, "instance runs"), {
      checkRecipes: false,
      decrypt: false,
    });
    try {
      const { store, stack } = context;
      if (!stack.instances.some((i) => i.name === instance) && !(await store.getAgent(stack.name, instance)))
        throw new GalleyError("ARGS_INVALID", `stack ${stack.name} has no instance ${instance}`, {
          hint: `galley stack status ${context.file} lists them`,
        });
      const runs = await store.listAgentRuns(stack.name, instance, { limit });
      answer = {
        stack: stack.name,
        instance,
        runs: runs.map(({ stack: _s, instance: _i, report, bundle, ...run }) => ({
          ...run,
          ...(bundle === undefined ? {} : { bundle }),
          ...(values.report && report !== undefined ? { report } : {}),
        })),
      };
    } finally {
      await context.store.close();
    }
  }
  printInstanceRuns(answer, values.json);
  return exitCodes.ok;
}

function printInstanceRuns(answer: InstanceRuns, json: boolean): void {
  if (json) {
    writeJson(answer);
    return;
  }
  if (answer.runs.length === 0) {
    write(`no runs of ${answer.instance}'s agent yet (instances with transport: agent report theirs)\n`);
    return;
  }
  write(`${paint("bold", `${answer.stack}/${answer.instance}`)}: the agent's runs, newest first\n`);
  for (const run of answer.runs) {
    const padded = run.status.padEnd(6);
    const status = run.status === "ok" ? padded : paint(run.status === "drift" ? "yellow" : "red", padded);
    write(
      `#${String(run.seq).padEnd(5)} ${run.kind.padEnd(5)} ${run.mode.padEnd(7)} ${status} changed ${run.changed} failed ${run.failed}  ${run.finishedAt}${run.bundle ? `  bundle ${shortId(run.bundle)}` : ""}\n`,
    );
  }
}

function limitOf(text: string | undefined): number {
  if (text === undefined) return 20;
  const n = Number(text);
  if (!/^[1-9][0-9]{0,3}$/.test(text) || !Number.isSafeInteger(n))
    throw new GalleyError("USAGE", `--limit ${text}: a number from 1 to 9999`, { hint: "--limit 20" });
  return n;
}

/** `galley run EVENT --stack S [--layer L | --instance I] [--app A]`. */
export const runCommand = {
  summary: "run a lifecycle event (setup, configure, deploy, undeploy, shutdown) on online instances",
  usage: "EVENT --stack STACK [--layer L | --instance I] [--app APP] [--forks N] [--json]",
  options: {
    ...remoteStackOptions,
    ...selectOptions,
    app: { type: "string", short: "a", description: "deploy/undeploy: only this app" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [event, ...rest] = positionals;
    if (!lifecycleEvents.includes(event as (typeof lifecycleEvents)[number]) || rest.length > 0) {
      throw new GalleyError(
        "USAGE",
        event
          ? `galley run: "${positionals.join(" ")}" is not one lifecycle event`
          : "galley run: which event?",
        {
          hint: `events: ${lifecycleEvents.join(", ")}; e.g. galley run configure --stack webapp`,
        },
      );
    }
    const { eventAction } = await import("../deploy/actions.ts");
    return withLifecycle(values, "run", eventAction(event as (typeof lifecycleEvents)[number], values));
  },
};

/** `galley run-recipes RECIPE… --stack S [--layer L | --instance I]`. */
export const runRecipesCommand = {
  summary: "run named recipes on online instances of a stack, with the stack state (r.stack)",
  usage: "RECIPE… --stack STACK [--layer L | --instance I] [--forks N] [--json]",
  options: { ...remoteStackOptions, ...selectOptions },
  async run(values: Values, positionals: string[]): Promise<number> {
    if (positionals.length === 0)
      throw new GalleyError("USAGE", "galley run-recipes: which recipes?", {
        hint: "galley run-recipes lb::configure --stack webapp --layer lb",
      });
    return withLifecycle(values, "run-recipes", {
      kind: "recipes",
      recipes: positionals,
      selection: selection(values),
    });
  },
};

/** `galley history --stack S [--limit N] [--event ID]`. */
export const historyCommand = {
  summary: "past lifecycle events of a stack with their outcome on each instance",
  usage: "--stack STACK [--limit N] [--event ID] [--json]",
  options: {
    ...remoteStackOptions,
    limit: { type: "string", description: "how many events (default 20)" },
    event: { type: "string", short: "e", description: "one event in full: each instance's log" },
  } as const,
  async run(values: Values, positionals: string[]): Promise<number> {
    if (positionals[0] !== undefined) values.stack ??= positionals[0];
    const limit = limitOf(values.limit);
    const remote = await remoteFor(values);
    if (remote) {
      const { remoteHistory } = await import("./remote-commands.ts");
      const { stack, events } = await remoteHistory(remote, values.stack, { limit, event: values.event });
      printHistory(stack, events, values);
      return exitCodes.ok;
    }
    const { openStack } = await import("../lifecycle/context.ts");
    const context = await openStack(stackFile(values.stack, "history"), {
      checkRecipes: false,
      decrypt: false,
    });
    try {
      const { store, stack } = context;
      const ids = values.event
        ? [Number(values.event)]
        : (await store.listEvents(stack.name, { limit })).map((e) => e.id);
      const events: EventDetail[] = [];
      for (const id of ids) {
        const event = await store.getEvent(id);
        if (!event || event.stack !== stack.name)
          throw new GalleyError("ARGS_INVALID", `stack ${stack.name} has no event #${id}`, {
            hint: `galley history --stack ${context.file} lists them`,
          });
        events.push(event);
      }
      printHistory(stack.name, events, values);
      return exitCodes.ok;
    } finally {
      await context.store.close();
    }
  },
};

// galley history's output, local or from a server
function printHistory(stack: string, events: EventDetail[], values: Values): void {
  if (values.json) {
    writeJson({ stack, events });
    return;
  }
  for (const event of events) {
    write(
      `${paint("bold", `#${event.id} ${event.kind}`)}  ${event.status}  state ${event.stateVersion ?? "-"}  ${event.createdAt}${event.bundle ? `  bundle ${values.event ? event.bundle : shortId(event.bundle)}` : ""}\n`,
    );
    for (const o of event.outcomes) {
      const line = (o.log ?? "").split("\n")[0];
      write(
        `  ${o.instance.padEnd(12)} ${o.status.padEnd(15)} state ${o.stateVersion ?? "-"}${o.bundle && o.bundle !== event.bundle ? `  bundle ${shortId(o.bundle)}` : ""}  ${line}\n`,
      );
      if (values.event && o.log?.includes("\n")) write(`${o.log.replace(/^/gm, "    ")}\n`);
    }
  }
}

// 12 hex digits name a bundle in text; --json and --event ID give the full id
function shortId(id: string): string {
  return id.startsWith("digest:") ? id.slice(0, 19) : id.slice(0, 12);
}
