import { exitCodes, GalleyError } from "../core/errors.ts";
import type { StackStatus } from "../lifecycle/status.ts";
import { deploymentProgress } from "./deploy.ts";
import {
  instanceTable,
  printOutcome,
  progressOptions,
  remoteStackOptions,
  stackFile,
} from "./lifecycle-output.ts";
import { paint, write, writeJson } from "./output.ts";
import { remoteFor } from "./remote.ts";
import { trapInterrupts } from "./signals.ts";

const options = {
  ...remoteStackOptions,
  to: { type: "string", description: "clone: the new stack file" },
  name: { type: "string", description: "clone: the new stack's name (default: the new file's name)" },
} as const;

interface Values {
  server?: string;
  stack?: string;
  forks?: string;
  "key-file"?: string;
  json: boolean;
  to?: string;
  name?: string;
  wait?: string;
}

const subcommands = ["up", "down", "status", "clone"] as const;

/** `galley stack up|down|status|clone`: a whole stack through its lifecycle (docs/stacks.md). */
export const stackCommand = {
  summary: "a stack through its lifecycle: up (start what should run), down, status, clone",
  usage: "up|down|status STACK [--forks N] [--json] | clone STACK --to NEW.yaml [--name NAME]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [given, stackArg, ...rest] = positionals;
    const subcommand = given as (typeof subcommands)[number];
    if (!subcommands.includes(subcommand)) {
      throw new GalleyError(
        "USAGE",
        subcommand ? `galley stack: unknown subcommand "${subcommand}"` : "galley stack: which subcommand?",
        { hint: `subcommands: ${subcommands.join(", ")}; see galley stack --help` },
      );
    }
    if (rest.length > 0)
      throw new GalleyError("USAGE", `galley stack ${subcommand}: unexpected ${rest.join(" ")}`, {
        hint: "name one stack: galley stack up stacks/production.yaml",
      });
    if (subcommand !== "clone") {
      const remote = await remoteFor(values);
      if (remote) {
        const { remoteStack } = await import("./remote-commands.ts");
        return remoteStack(remote, subcommand, stackArg ?? values.stack, values);
      }
    }
    const file = stackFile(stackArg ?? values.stack, `stack ${subcommand}`);
    if (subcommand === "clone") return clone(file, values);
    const { openStack } = await import("../lifecycle/context.ts");
    // a stack whose recipes went wrong can still be stopped
    const context = await openStack(file, {
      checkRecipes: subcommand !== "down",
      // status only reads the store
      decrypt: subcommand !== "status",
      keyFile: values["key-file"],
    });
    try {
      // status only reads: it records nothing, not even the stack as applied
      if (subcommand === "status") {
        const { stackStatus } = await import("../lifecycle/status.ts");
        printStatus(await stackStatus(context), values.json, context.file);
        return exitCodes.ok;
      }
      const { runStackAction } = await import("../deploy/actions.ts");
      const trap = trapInterrupts();
      try {
        const result = await runStackAction(
          context,
          { kind: subcommand },
          {
            ...progressOptions(values.json, values.forks, { wait: values.wait, signal: trap.signal }),
            deployments: deploymentProgress(values.json),
          },
        );
        printOutcome(result.outcome, values.json);
        return trap.exitCode() ?? result.exitCode;
      } finally {
        trap.dispose();
      }
    } finally {
      await context.store.close();
    }
  },
};

/** `galley stack status`, from a stack's status (local or a server's): the same text and JSON. */
export function printStatus(status: StackStatus, json: boolean, file: string): void {
  const { applied, ...rest } = status;
  if (json) {
    writeJson(rest);
    return;
  }
  write(`${paint("bold", `stack ${status.stack}`)}  state ${status.stateVersion ?? "-"}\n`);
  if (!applied) write(`not brought up yet: galley stack up ${file}\n`);
  else write(`${instanceTable(status.instances)}\n`);
  if (status.agents.length > 0) {
    write(`\n${paint("bold", "agents")} (galley instance runs NAME --stack ${file})\n`);
    for (const a of status.agents) {
      const run = a.lastRun;
      write(
        `${a.instance.padEnd(12)} ${run ? `${run.kind} ${run.mode} ${run.status}: changed ${run.changed}, failed ${run.failed}, ${run.finishedAt}` : "no run yet"}  (last seen ${a.lastSeenAt ?? "never"})\n`,
      );
    }
  }
  if (status.events.length > 0) {
    write(`\n${paint("bold", "recent events")} (galley history --stack ${file})\n`);
    for (const e of status.events)
      write(
        `#${String(e.id).padEnd(4)} ${e.kind.padEnd(11)} ${e.status.padEnd(10)} state ${e.stateVersion ?? "-"}  ${e.createdAt}\n`,
      );
  }
}

/** `galley stack clone`: the copy is stacks/clone.ts's; this prints what it did. */
async function clone(file: string, values: Values): Promise<number> {
  if (!values.to) {
    throw new GalleyError("USAGE", "galley stack clone: where to?", {
      hint: "galley stack clone stacks/production.yaml --to stacks/staging.yaml",
    });
  }
  const { cloneStack } = await import("../stacks/clone.ts");
  const {
    to: target,
    name,
    instances: renamed,
    leftOut: left,
  } = await cloneStack({
    from: file,
    to: values.to,
    name: values.name,
  });
  if (values.json) {
    writeJson({ from: file, to: target, name, instances: renamed, leftOut: left });
  } else {
    write(`${paint("bold", `stack ${name}`)} written to ${target}\n`);
    for (const [from, to] of Object.entries(renamed)) write(`  instance ${from} → ${to}\n`);
    if (left.length > 0)
      write(
        `  left out (ssh instances name existing machines; add the new stack's own): ${left.join(", ")}\n`,
      );
  }
  return exitCodes.ok;
}
