import { compileRun } from "../cookbooks/solo.ts";
import { converge } from "../core/converge.ts";
import { exitCodes } from "../core/errors.ts";
import { LocalHost } from "../hosts/local.ts";
import { defaultStateDir } from "../hosts/statedir.ts";
import { bundleOf } from "./bundle-open.ts";
import { formatResource, formatSummary, paint, writeJson, write } from "./output.ts";
import {
  convergeOptions,
  cookbooksDir,
  type RunListValues,
  runListOptions,
  secretOptions,
} from "./options.ts";

const options = {
  ...runListOptions,
  "state-dir": {
    type: "string",
    description: "where pending notifications and backups live (default /var/lib/galley as root)",
  },
  ...convergeOptions,
} as const;

interface Values extends RunListValues {
  "state-dir"?: string;
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
    options,
    async run(values: Values, positionals: string[]): Promise<number> {
      const host = new LocalHost();
      const bundle = await bundleOf(values, positionals);
      const runList = bundle ? bundle.runList : positionals;
      const { catalog, types } = await compileRun({
        ...(bundle ? { cookbooks: bundle.cookbooks } : {}),
        runList,
        cookbooksDir: cookbooksDir(values),
        attributeFiles: values.attrs ?? [],
        host,
        secrets: secretOptions(values),
      });
      if (!values.json)
        write(
          `${paint("bold", `galley ${mode}`)} ${runList.join(" ")}${bundle ? ` from bundle ${bundle.id.slice(0, 12)}` : ""} on ${host.name} (${catalog.resources.length} resources)\n`,
        );
      const report = await converge(catalog, host, {
        mode,
        stateDir: values["state-dir"] ?? defaultStateDir(),
        types,
        onEvent: (event) => {
          if (values.json || event.kind !== "resource" || event.report.status === "unchanged") return;
          write(`${formatResource(event.report, { diffs: !values["no-diff"] })}\n`);
        },
      });
      if (values.json) writeJson(report);
      else {
        // resources changed later by a notification are printed again with their final state
        for (const resource of report.resources) {
          if (resource.notified?.length && resource.status !== "unchanged") {
            write(`${formatResource(resource, { diffs: !values["no-diff"] })}\n`);
          }
        }
        write(`${formatSummary(report)}\n`);
      }
      return report.status === "ok" ? exitCodes.ok : exitCodes.runFailed;
    },
  };
}
