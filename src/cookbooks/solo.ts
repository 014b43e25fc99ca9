import type { Catalog } from "../core/catalog.ts";
import { compile } from "../core/compile.ts";
import type { Host } from "../core/host.ts";
import type { ResourceType } from "../core/resource.ts";
import { resourceTypes } from "../resources/index.ts";
import { loadCustomTypes, typeRegistry } from "./custom-types.ts";
import { CookbookRunList } from "./runlist.ts";

export interface CompileRunListOptions {
  /** `cookbook`, `cookbook::recipe`, or a recipe file */
  runList: string[];
  cookbooksDir: string;
  /** attribute files (JSON or YAML), merged over cookbook defaults in order */
  attributeFiles: string[];
  host: Host;
  types?: Readonly<Record<string, ResourceType>>;
}

/** Compiles a run list over a cookbooks folder for one host: loads cookbooks, merges attributes, runs recipes. */
export async function compileRunList(options: CompileRunListOptions): Promise<Catalog> {
  return (await compileRun(options)).catalog;
}

/** The catalog, and the types that converge it: the built-in ones and the cookbooks' own. */
export async function compileRun(
  options: CompileRunListOptions,
): Promise<{ catalog: Catalog; types: Readonly<Record<string, ResourceType>> }> {
  const facts = await options.host.facts();
  const runList = await CookbookRunList.load(options.runList, options.cookbooksDir);
  const attributes = await runList.attributes(facts, options.attributeFiles);
  const custom = await loadCustomTypes(runList.cookbooks.values());
  let types = options.types ?? resourceTypes;
  if (Object.keys(custom).length > 0)
    types = options.types ? { ...options.types, ...custom } : typeRegistry(custom);
  const catalog = await compile({ runList, attributes, facts, hostName: options.host.name, types });
  return { catalog, types };
}
