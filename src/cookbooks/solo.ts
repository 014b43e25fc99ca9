import type { Attributes } from "../core/attributes.ts";
import type { Catalog } from "../core/catalog.ts";
import { type AttributeLayers, compile } from "../core/compile.ts";
import type { Host } from "../core/host.ts";
import type { ResourceType } from "../core/resource.ts";
import { displayPath } from "../core/location.ts";
import { resourceTypes } from "../resources/index.ts";
import type { RecipeStackView } from "../core/recipe.ts";
import type { Cookbook, SecretOptions } from "./cookbook.ts";
import { loadCustomTypes, typeRegistry } from "./custom-types.ts";
import type { AttributeSet, AttributeSource } from "./precedence.ts";
import { CookbookRunList } from "./runlist.ts";

export interface CompileRunListOptions {
  /** `cookbook`, `cookbook::recipe`, or a recipe file */
  runList: string[];
  cookbooksDir: string;
  /** attribute files (JSON, YAML or encrypted), merged over cookbook defaults in order */
  attributeFiles: string[];
  host: Host;
  types?: Readonly<Record<string, ResourceType>>;
  /** how to decrypt encrypted attribute files */
  secrets?: SecretOptions;
  /** the cookbooks to use instead of loading the kitchen's (a bundle's) */
  cookbooks?: Map<string, Cookbook>;
  /** more attribute layers, e.g. an inventory's group (layer level) and host (instance level) attributes */
  layers?: readonly { source: AttributeSource; values: Attributes }[];
  /** the stack state seen from this host (r.stack), in a stack's lifecycle runs */
  stack?: RecipeStackView | undefined;
}

/** What compiling a run list yields: the catalog, the types that converge it, and the attributes. */
export interface CompiledRun {
  catalog: Catalog;
  /** the built-in types and the cookbooks' own */
  types: Readonly<Record<string, ResourceType>>;
  /** every attribute layer, recipe overrides included, with where each value came from */
  attributes: AttributeSet;
}

/** Compiles a run list over a cookbooks folder for one host: loads cookbooks, merges attributes, runs recipes. */
export async function compileRunList(options: CompileRunListOptions): Promise<Catalog> {
  return (await compileRun(options)).catalog;
}

/** Compiles a run list, keeping the types and the attribute layers beside the catalog. */
export async function compileRun(options: CompileRunListOptions): Promise<CompiledRun> {
  const facts = await options.host.facts();
  const runList = await CookbookRunList.load(
    options.runList,
    options.cookbooksDir,
    options.cookbooks ? { cookbooks: options.cookbooks } : {},
  );
  const attributes = await runList.attributeSet(facts, options.attributeFiles, options.secrets);
  for (const layer of options.layers ?? []) attributes.add(layer.source, layer.values);
  const custom = await loadCustomTypes(runList.cookbooks.values());
  let types = options.types ?? resourceTypes;
  if (Object.keys(custom).length > 0)
    types = options.types ? { ...options.types, ...custom } : typeRegistry(custom);
  const catalog = await compile({
    runList,
    attributes: attributes.merged(),
    layers: overridable(attributes),
    facts,
    hostName: options.host.name,
    types,
    stack: options.stack,
  });
  return { catalog, types, attributes };
}

// recipes read the merge, frozen: a change goes through r.override, which keeps where it came from
function overridable(set: AttributeSet): AttributeLayers {
  let frozen: Attributes | undefined;
  return {
    merged() {
      const merged = set.merged();
      if (frozen !== merged) frozen = deepFreeze(merged);
      return frozen;
    },
    override(values, source) {
      set.add(
        {
          level: "override",
          label: `${source.label} (${displayPath(source.file)}:${source.line})`,
          file: source.file,
        },
        values,
      );
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
