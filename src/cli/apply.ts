import { prepareCookbooks } from "../cookbooks/prepared.ts";
import { exitCodes } from "../core/errors.ts";
import { LocalHost } from "../hosts/local.ts";
import { defaultStateDir } from "../hosts/statedir.ts";
import { convergeHost } from "../fleet/pipeline.ts";
import { bundleOf, preparedOf } from "./bundle-open.ts";
import { acquireRunLock, describeHolder } from "../core/runlock.ts";
import { type InterruptTrap, trapInterrupts } from "./signals.ts";
import { reporters } from "./reporters.ts";
import {
  convergeOptions,
  cookbooksDir,
  type RunListValues,
  runListOptions,
  runLockOptions,
  secretOptions,
  waitMs,
} from "./options.ts";

const options = {
  ...runListOptions,
  "state-dir": {
    type: "string",
    description: "where pending notifications and backups live (default /var/lib/galley as root)",
  },
  ...convergeOptions,
} as const;

// plan writes nothing on the host: it takes no run lock, so it has no --wait
const applyOptions = { ...options, ...runLockOptions } as const;

interface Values extends RunListValues {
  "state-dir"?: string;
  wait?: string;
  bundle?: string;
  trust?: string[];
  "no-diff": boolean;
}

/** `galley apply` and `galley plan`: solo mode, converging this machine. */
export function apply(mode: "apply" | "plan") {
  return {
    summary:
      mode === "apply"
        ? "converge this machine: run the recipes, apply what differs"
        : "show what apply would change, with diffs, changing nothing",
    usage:
      "[RUNLIST…] [--cookbooks DIR] [--attrs FILE] [--json]   (items: cookbook, cookbook::recipe, ./recipe.ts)",
    options: mode === "apply" ? applyOptions : options,
    async run(values: Values, positionals: string[]): Promise<number> {
      const trap = trapInterrupts();
      try {
        return await run(mode, values, positionals, trap);
      } finally {
        trap.dispose();
      }
    },
  };
}

async function run(
  mode: "apply" | "plan",
  values: Values,
  positionals: string[],
  trap: InterruptTrap,
): Promise<number> {
  const host = new LocalHost(undefined, { signal: trap.signal });
  const stateDir = values["state-dir"] ?? defaultStateDir();
  // one run at a time on this machine: taken before anything is read, held to the end
  const lock =
    mode === "apply"
      ? await acquireRunLock(host, stateDir, {
          waitMs: waitMs(values),
          command: "galley apply",
          signal: trap.signal,
          onWait: (holder) => process.stderr.write(`waiting for ${describeHolder(holder)}\n`),
        })
      : undefined;
  try {
    const bundle = await bundleOf(values, positionals);
    const runList = bundle ? bundle.runList : positionals;
    // the resolve stage: the cookbooks once, as one prepared set (an opened bundle is one)
    const prepared = bundle
      ? preparedOf(bundle)
      : await prepareCookbooks({ cookbooksDir: cookbooksDir(values), runLists: { default: runList } });
    const reporter = reporters[values.json ? "json" : "human"].run({ diffs: !values["no-diff"] });
    const report = await convergeHost(prepared, {
      compile: {
        runList,
        cookbooksDir: cookbooksDir(values),
        attributeFiles: values.attrs ?? [],
        host,
        secrets: secretOptions(values),
      },
      mode,
      stateDir,
      signal: trap.signal,
      onCompiled: (catalog) =>
        reporter.start({
          command: `galley ${mode}`,
          runList,
          bundleId: bundle?.id,
          host: host.name,
          resources: catalog.resources.length,
        }),
      onEvent: (event) => reporter.event(event),
    });
    reporter.end(report);
    if (report.status === "interrupted") {
      const left = report.resources.filter((r) => r.reason === "interrupted").length;
      process.stderr.write(
        `galley ${mode}: interrupted: ${left} resource${left === 1 ? "" : "s"} not run; ${report.notifications.kept.length} notification${report.notifications.kept.length === 1 ? "" : "s"} kept for the next run\n`,
      );
      return trap.exitCode() ?? exitCodes.interruptedInt;
    }
    return report.status === "ok" ? exitCodes.ok : exitCodes.runFailed;
  } finally {
    await lock?.release();
  }
}
