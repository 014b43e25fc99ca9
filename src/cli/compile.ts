import { prepareCookbooks } from "../cookbooks/prepared.ts";
import { compileHost } from "../fleet/pipeline.ts";
import { exitCodes } from "../core/errors.ts";
import { redactResource } from "../core/report.ts";
import { LocalHost } from "../hosts/local.ts";
import { cookbooksDir, type RunListValues, runListOptions, secretOptions } from "./options.ts";
import { writeJson, write } from "./output.ts";

/** `galley compile`: the catalog a run list yields on this machine, without touching it. */
export const compileCommand = {
  summary: "print the catalog (resources, edges, order) a run list compiles to",
  usage: "[RUNLIST…] [--cookbooks DIR] [--attrs FILE] [--json]",
  options: runListOptions,
  async run(values: RunListValues, positionals: string[]): Promise<number> {
    const prepared = await prepareCookbooks({
      cookbooksDir: cookbooksDir(values),
      runLists: { default: positionals },
    });
    const { catalog, types } = await compileHost(prepared, {
      runList: positionals,
      cookbooksDir: cookbooksDir(values),
      attributeFiles: values.attrs ?? [],
      host: new LocalHost(),
      secrets: secretOptions(values),
    });
    const printable = {
      ...catalog,
      resources: catalog.resources.map((r) =>
        redactResource(r, types[r.type] ?? ({ type: r.type } as never)),
      ),
    };
    if (values.json) {
      writeJson(printable, (_key, value) => (typeof value === "function" ? "(function)" : value));
      return exitCodes.ok;
    }
    for (const [i, resource] of catalog.resources.entries()) {
      const deps = catalog.edges.filter((e) => e.to === resource.id).map((e) => `${e.from} (${e.reason})`);
      write(
        `${String(i + 1).padStart(4)}. ${resource.id} [${resource.actions.join(", ")}]  ${resource.source.recipe}:${resource.source.line}\n`,
      );
      if (deps.length) write(`        after: ${deps.join(", ")}\n`);
    }
    return exitCodes.ok;
  },
};
