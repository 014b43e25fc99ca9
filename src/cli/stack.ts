import { exitCodes, GalleyError } from "../core/errors.ts";
import { waitMs } from "./options.ts";
import { trapInterrupts } from "./signals.ts";
import { finish, instanceTable, progressOptions, stackFile, stackOptions } from "./lifecycle-output.ts";
import { paint, write, writeJson } from "./output.ts";

const options = {
  ...stackOptions,
  to: { type: "string", description: "clone: the new stack file" },
  name: { type: "string", description: "clone: the new stack's name (default: the new file's name)" },
} as const;

interface Values {
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
    const [subcommand, stackArg, ...rest] = positionals;
    if (!subcommands.includes(subcommand as (typeof subcommands)[number])) {
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
    const file = stackFile(stackArg ?? values.stack, `stack ${subcommand}`);
    if (subcommand === "clone") return clone(file, values);
    const [{ openStack }, { Lifecycle }] = await Promise.all([
      import("../lifecycle/context.ts"),
      import("../lifecycle/lifecycle.ts"),
    ]);
    // a stack whose recipes went wrong can still be stopped
    const context = await openStack(file, {
      checkRecipes: subcommand !== "down",
      // status only reads the store
      decrypt: subcommand !== "status",
      keyFile: values["key-file"],
    });
    try {
      // status only reads: it records nothing, not even the stack as applied
      if (subcommand === "status") return await status(context, values.json);
      const trap = trapInterrupts();
      try {
        const lifecycle = await Lifecycle.open(
          context,
          progressOptions(values.json, values.forks, { wait: values.wait, signal: trap.signal }),
        );
        if (subcommand === "up") await lifecycle.up();
        else await lifecycle.down();
        await lifecycle.idle();
        const deployed =
          subcommand === "up"
            ? await (await import("./deploy.ts")).firstDeployments(context, {
                json: values.json,
                signal: trap.signal,
                waitMs: waitMs(values),
              })
            : 0;
        const code = await finish(context, lifecycle, values.json);
        return trap.exitCode() ?? (code || deployed);
      } finally {
        trap.dispose();
      }
    } finally {
      await context.store.close();
    }
  },
};

async function status(
  context: import("../lifecycle/context.ts").StackContext,
  json: boolean,
): Promise<number> {
  const { store, stack } = context;
  const events = await store.listEvents(stack.name, { limit: 10 });
  if (json) {
    writeJson({
      stack: stack.name,
      stateVersion: (await store.latestState(stack.name))?.version ?? null,
      instances: (await store.listInstances(stack.name)).map((i) => ({
        name: i.name,
        layers: i.layers,
        status: i.status,
        address: i.address ?? null,
        updatedAt: i.updatedAt,
      })),
      events,
    });
    return exitCodes.ok;
  }
  write(
    `${paint("bold", `stack ${stack.name}`)}  state ${(await store.latestState(stack.name))?.version ?? "-"}\n`,
  );
  if (!(await store.getStack(stack.name))) write(`not brought up yet: galley stack up ${context.file}\n`);
  else write(`${await instanceTable(context)}\n`);
  if (events.length > 0) {
    write(`\n${paint("bold", "recent events")} (galley history --stack ${context.file})\n`);
    for (const e of events)
      write(
        `#${String(e.id).padEnd(4)} ${e.kind.padEnd(11)} ${e.status.padEnd(10)} state ${e.stateVersion ?? "-"}  ${e.createdAt}\n`,
      );
  }
  return exitCodes.ok;
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
