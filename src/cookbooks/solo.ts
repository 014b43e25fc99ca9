import type { Catalog } from "../core/catalog.ts";
import { compile } from "../core/compile.ts";
import type { Host } from "../core/host.ts";
import type { ResourceType } from "../core/resource.ts";
import { resourceTypes } from "../resources/index.ts";
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
  const facts = await options.host.facts();
  const runList = await CookbookRunList.load(options.runList, options.cookbooksDir);
  const attributes = await runList.attributes(facts, options.attributeFiles);
  return compile({
    runList,
    attributes,
    facts,
    hostName: options.host.name,
    types: options.types ?? resourceTypes,
  });
}
