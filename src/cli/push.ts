import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { FleetMember, HostOutcome } from "../fleet/push.ts";
import { preparedOf } from "./bundle-open.ts";
import { reporters } from "./reporters.ts";
import { trapInterrupts } from "./signals.ts";
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
  inventory: {
    type: "string",
    short: "i",
    description: "the inventory: Galley YAML, or Ansible INI or YAML",
  },
  limit: {
    type: "string",
    short: "l",
    description: "only hosts matching this pattern (web, web:&prod, 'db*', !web3)",
  },
  forks: { type: "string", short: "f", description: "hosts converged at once (default: all, at most 50)" },
  plan: {
    type: "boolean",
    default: false,
    description: "show what would change on each host, changing nothing",
  },
  "max-fail-percent": {
    type: "string",
    description: "stop starting hosts once more than this percentage of hosts failed or was unreachable",
  },
  ...convergeOptions,
  ...runLockOptions,
} as const;

interface Values extends RunListValues {
  inventory?: string;
  limit?: string;
  forks?: string;
  plan: boolean;
  "max-fail-percent"?: string;
  "no-diff": boolean;
  bundle?: string;
  trust?: string[];
  wait?: string;
}

/** The most hosts converged at once when --forks is not given. */
const defaultForkCap = 50;

/** `galley push`: converge the inventory's hosts over SSH, in parallel. */
export const pushCommand = {
  summary: "converge many hosts over SSH (agentless push), in parallel",
  usage:
    "-i INVENTORY [--limit PATTERN] [--forks N] [--plan] [--max-fail-percent P] [--wait SECONDS] [--json] RUNLIST…",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    if (!values.inventory) {
      throw new GalleyError("USAGE", "galley push needs an inventory", {
        hint: "name one with -i: galley push -i inventory.yaml web (galley hosts up writes .galley/hosts/inventory.yaml)",
      });
    }
    const [{ loadInventory }, { selectHosts }, { pushFleet }, { transports }] = await Promise.all([
      import("../inventory/load.ts"),
      import("../inventory/select.ts"),
      import("../fleet/push.ts"),
      import("../hosts/transports.ts"),
    ]);
    const inventory = await loadInventory(path.resolve(values.inventory));
    const members: FleetMember[] = selectHosts(inventory, values.limit).map((host) => ({
      name: host.name,
      target: host.target,
      attributes: [
        {
          source: { level: "layer", label: `inventory groups of ${host.name}` },
          values: host.attributes.group,
        },
        { source: { level: "instance", label: `inventory host ${host.name}` }, values: host.attributes.host },
      ],
    }));
    const forks = values.forks ? count("--forks", values.forks, 1) : Math.min(members.length, defaultForkCap);
    const maxFail = values["max-fail-percent"];
    const maxFailPercent = maxFail === undefined ? undefined : count("--max-fail-percent", maxFail, 0, 100);
    const bundle = await (await import("./bundle-open.ts")).bundleOf(values, positionals);
    const runList = bundle ? bundle.runList : positionals;
    if (runList.length === 0) {
      throw new GalleyError("USAGE", "the run list is empty", {
        hint: "name recipes to run on every host: galley push -i inventory.yaml webapp",
      });
    }
    const mode = values.plan ? "plan" : "apply";
    const wait = waitMs(values);
    const reporter = reporters[values.json ? "json" : "human"].fleet({ diffs: !values["no-diff"] });
    reporter.start({
      command: `galley push${values.plan ? " --plan" : ""}`,
      runList,
      hosts: members.map((m) => m.name),
      forks,
    });
    const trap = trapInterrupts();
    const outcomes = await pushFleet({
      members,
      mode,
      forks,
      waitMs: wait,
      command: "galley push",
      signal: trap.signal,
      ...(maxFailPercent === undefined ? {} : { maxFailPercent }),
      compile: {
        runList,
        cookbooksDir: cookbooksDir(values),
        attributeFiles: values.attrs ?? [],
        secrets: secretOptions(values),
      },
      // an opened bundle is the run's prepared set: checked once, its id in every report
      ...(bundle ? { prepared: preparedOf(bundle) } : {}),
      connect: (target, onAttempt) => transports.ssh.connect(target, { onAttempt, signal: trap.signal }),
      onPhase: (name, phase) => reporter.phase(name, phase),
    }).finally(() => trap.dispose());
    reporter.end(outcomes);
    return trap.exitCode() ?? exitCode([...outcomes.values()]);
  },
};

function count(option: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new GalleyError(
      "ARGS_INVALID",
      `${option} ${text}: expected a whole number from ${min} to ${max === Number.MAX_SAFE_INTEGER ? "up" : max}`,
      {
        hint: `for example ${option} ${min === 0 ? 25 : 10}`,
      },
    );
  }
  return value;
}

/** 0 when every host converged; 1 when one failed or was skipped; 4 when the only trouble was unreachable hosts. */
function exitCode(outcomes: HostOutcome[]): number {
  if (outcomes.some((o) => o.status === "failed" || o.status === "skipped")) return exitCodes.runFailed;
  if (outcomes.some((o) => o.status === "unreachable")) return exitCodes.unreachable;
  return exitCodes.ok;
}
