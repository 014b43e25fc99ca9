import * as path from "node:path";
import { compileRun } from "../cookbooks/solo.ts";
import { converge } from "../core/converge.ts";
import { exitCodes, GalleyError } from "../core/errors.ts";
import { LocalHost } from "../hosts/local.ts";
import { defaultStateDir } from "../hosts/statedir.ts";
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

/** `--bundle FILE` opened with the run list given (else its default) and `--trust`; undefined without --bundle. */
export async function bundleOf(
  values: { bundle?: string | undefined; trust?: string[] | undefined },
  items: string[],
) {
  if (values.bundle) return openBundleCookbooks(values.bundle, { items, trust: values.trust ?? [] });
  if (values.trust?.length) {
    throw new GalleyError("USAGE", "--trust checks a bundle's signature: it needs --bundle FILE", {
      hint: "galley apply --bundle FILE --trust KEY.pub (or drop --trust)",
    });
  }
  return undefined;
}

/**
 * The cookbooks of a bundle, verified (and, when trust is configured by `trust` files or
 * GALLEY_BUNDLE_TRUST, its signature checked first) and extracted into the cache, with the run list:
 * `items` when given, else the bundle's default. Every item must name a cookbook of the bundle.
 */
export async function openBundleCookbooks(
  file: string,
  options: { items?: string[]; trust?: string[] } = {},
) {
  const [{ openBundle, runListItemsProblem }, { cacheDir }, { loadCookbooks }, signing] = await Promise.all([
    import("../cookbooks/bundle.ts"),
    import("../cookbooks/git.ts"),
    import("../cookbooks/cookbook.ts"),
    import("../cookbooks/signing.ts"),
  ]);
  const resolved = path.resolve(file);
  const trustFiles = signing.trustedKeyFiles(options.trust);
  const keys = trustFiles.length > 0 ? await signing.readTrustedKeys(trustFiles) : undefined;
  const signature = keys ? await signing.readBundleSignature(resolved) : undefined;
  let signed: { keyId: string; signedAt: string } | undefined;
  // the signature is checked against the id of the very bytes opened, before anything is unpacked
  const verify = (id: string) => {
    if (keys) signed = signing.verifyBundleSignature(id, signature, keys, file);
  };
  const opened = await openBundle(resolved, cacheDir(), { verify });
  const runList = options.items?.length ? options.items : (opened.manifest.runLists.default ?? []);
  const names = new Set(opened.manifest.cookbooks.map((c) => c.name));
  const problem = runListItemsProblem(runList, names);
  if (problem) {
    throw new GalleyError("ARGS_INVALID", `--bundle ${file}: run list ${problem}`, {
      hint: `name recipes of the bundle's cookbooks (${[...names].join(", ")}), or run a recipe file without --bundle`,
    });
  }
  return { id: opened.id, cookbooks: await loadCookbooks(opened.cookbooksDir), runList, signed };
}
