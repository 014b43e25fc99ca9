import * as path from "node:path";
import { pathToFileURL } from "node:url";
import * as v from "valibot";
import { type Attributes, isPlainObject } from "./attributes.ts";
import type { Catalog, CatalogResource, SourceLocation } from "./catalog.ts";
import { parseResourceId, resourceId } from "./catalog.ts";
import { commonKeys, commonSchema, ResourceRef } from "./common.ts";
import { type CompositeType, isComposite } from "./custom.ts";
import { GalleyError, isGalleyError } from "./errors.ts";
import { buildEdges, orderResources } from "./graph.ts";
import type { Facts } from "./host.ts";
import { CallerLocation, displayPath } from "./location.ts";
import { importCookbookModule } from "./modules.ts";
import type { Recipe, RecipeContext, RecipeStackView } from "./recipe.ts";
import { compileDeadlineMs, type RecipeScope, recipeScope, withCompileDeadline } from "./recipe-scope.ts";
import type { CompileContext, ResourceType } from "./resource.ts";
import { currentSecrets, type Secrets, withSecrets } from "./secrets.ts";
import { formatIssues } from "./validate.ts";
import { readCookbookFile, type RunList } from "./runlist.ts";

/** Attribute layers a recipe can add overrides to (`r.override`); `r.attrs` is always their merge. */
export interface AttributeLayers {
  merged(): Attributes;
  override(values: Attributes, source: { label: string; file: string; line: number }): void;
}

export interface CompileOptions {
  runList: RunList;
  /** the merged attributes; with `layers`, what they merge to before any override */
  attributes: Attributes;
  layers?: AttributeLayers;
  facts: Facts;
  hostName: string;
  types: Readonly<Record<string, ResourceType>>;
  /** the stack state seen from this host, in a stack's lifecycle runs (r.stack) */
  stack?: RecipeStackView | undefined;
  /** how long recipes may take (default: GALLEY_COMPILE_TIMEOUT seconds, else 120 s) */
  deadlineMs?: number;
  /**
   * the run's secret registry: recipes' `sensitive()` registers there, and a resource holding one
   * of its secrets is sensitive (default: the current run's, `currentSecrets()`)
   */
  secrets?: Secrets | undefined;
}

// most declarations set no common property: their parse result is always the same
const noCommonProps = v.safeParse(commonSchema, {});

/** Where declarations come from: a recipe, or the body of a composite (`parent`). */
interface Origin {
  cookbook: string | undefined;
  label: string;
  file: string;
  parent: CatalogResource | undefined;
}

/**
 * A composite's resources wait for what the composite requires and obey its guards; the composite
 * converges after them (an edge per child) and changed when one of them changed.
 */
function inherit(child: CatalogResource, parent: CatalogResource): void {
  child.parent = parent.id;
  parent.children!.push(child.id);
  for (const id of parent.requires) if (!child.requires.includes(id)) child.requires.push(id);
  const guards = [...(parent.parentGuards ?? [])];
  if (parent.onlyIf || parent.notIf) {
    guards.push({
      of: parent.id,
      ...(parent.onlyIf ? { onlyIf: parent.onlyIf } : {}),
      ...(parent.notIf ? { notIf: parent.notIf } : {}),
    });
  }
  if (guards.length > 0) child.parentGuards = guards;
}

interface Declared {
  resource: CatalogResource;
  /** the declaration as validated, before compile resolved files: what duplicates are compared with */
  declaration: { props: Record<string, unknown>; subscribes: unknown; requires?: string[] };
}

/**
 * Runs the run list's recipes with attributes and facts, and yields the catalog: every declared
 * resource validated and compiled, edges, and converge order. Recipes only declare; nothing
 * touches the host.
 */
export async function compile(options: CompileOptions): Promise<Catalog> {
  const secrets = options.secrets ?? currentSecrets();
  const declared = new Map<string, Declared>();
  const keys = new Map<string, string>();
  const pending: Promise<void>[] = [];
  const included = new Set<string>();
  const cache = new Map<string, unknown>();
  const includes: Promise<void>[] = [];
  // recipes and composite bodies not finished yet: what the compile deadline names
  const running = new Set<RecipeScope>();

  const runRecipe = async (entry: { cookbook: string | undefined; recipe: string; file: string }) => {
    const label = entry.cookbook ? `${entry.cookbook}::${entry.recipe}` : displayPath(entry.file);
    if (included.has(label)) return;
    included.add(label);
    const scope = { label, file: entry.file };
    running.add(scope);
    try {
      const recipe = await importRecipe(entry.file, label);
      const context = makeContext(entry.cookbook, label, entry.file);
      // its timers and callbacks keep the scope: a late failure still names the recipe
      await recipeScope.run(scope, () => recipe(context));
    } catch (error) {
      if (isGalleyError(error)) throw error;
      const where = locationIn(error, entry.file);
      const message = error instanceof Error ? error.message : String(error);
      throw new GalleyError("RECIPE_FAILED", `recipe ${label} failed${where}: ${message}`, {
        hint: /read.only property|object is not extensible/.test(message)
          ? "r.attrs is read-only: set attributes with r.override({ … }) (see docs/attributes.md)"
          : "fix the recipe code at that line",
        cause: error,
      });
    } finally {
      running.delete(scope);
    }
  };

  const makeContext = (
    cookbook: string | undefined,
    label: string,
    file: string,
    parent?: CatalogResource,
  ) => {
    const origin: Origin = { cookbook, label, file, parent };
    const layers = options.layers;
    const base = {
      get attrs() {
        return layers ? layers.merged() : options.attributes;
      },
      override: function override(values: Attributes) {
        const where = here(label, file, override);
        if (!isPlainObject(values)) {
          throw new GalleyError(
            "ATTRIBUTES_INVALID",
            `r.override at ${displayPath(where.file)}:${where.line} needs an object, e.g. r.override({ app: { port: 8080 } })`,
          );
        }
        if (!layers) throw new GalleyError("USAGE", "r.override is not available in this compile");
        layers.override(values, { label: `recipe ${label}`, file: where.file, line: where.line });
      },
      facts: options.facts,
      get stack(): RecipeStackView {
        if (!options.stack) {
          throw new GalleyError(
            "USAGE",
            `recipe ${label} reads r.stack, which only a stack's lifecycle runs have (galley stack up, galley run)`,
            { hint: "run it through a stack, or guard the recipe with `if (r.inStack)`" },
          );
        }
        return options.stack;
      },
      inStack: options.stack !== undefined,
      cookbook,
      recipe: label,
      include: (name: string) => {
        const done = options.runList.resolveInclude(name, cookbook, label).then(runRecipe);
        // an include the recipe forgot to await still finishes (and fails) within this compile
        includes.push(done);
        done.catch(() => {}); // observed by the await below, not an unhandled rejection
        return done;
      },
      resource: function resource(type: string, name: string, props: Record<string, unknown> = {}) {
        return declare(type, name, props, origin, resource);
      },
    };
    // r.file, r.template…: one function per type and recipe, made on first use
    const methods = new Map<string, (name: string, props?: Record<string, unknown>) => ResourceRef>();
    return new Proxy(base, {
      get: function get(target, property, receiver) {
        if (typeof property !== "string" || property in target)
          return Reflect.get(target, property, receiver);
        const method = methods.get(property);
        if (method) return method;
        if (property === "then") return undefined;
        if (Object.hasOwn(options.types, property)) {
          const declareType = (name: string, props: Record<string, unknown> = {}): ResourceRef =>
            declare(property, name, props, origin, declareType);
          methods.set(property, declareType);
          return declareType;
        }
        throw unknownType(property, here(label, file, get), options.types);
      },
    }) as unknown as RecipeContext;
  };

  const declare = (
    type: string,
    name: string,
    input: Record<string, unknown>,
    origin: Origin,
    entry: (...args: never[]) => unknown,
  ): ResourceRef => {
    const { cookbook, label, file, parent } = origin;
    const source = here(label, file, entry);
    const resourceType = options.types[type];
    if (!resourceType) throw unknownType(type, source, options.types);
    const owner = (resourceType as { cookbook?: string }).cookbook;
    if (owner && cookbook && owner !== cookbook && !options.runList.dependsOn(cookbook, owner)) {
      throw new GalleyError(
        "COOKBOOK_INVALID",
        `${label} (${displayPath(source.file)}:${source.line}) uses ${type} from cookbook ${owner}, but cookbook ${cookbook} does not depend on ${owner}`,
        { hint: `add it to depends in ${cookbook}'s cookbook.yaml: depends: { ${owner}: "*" }` },
      );
    }
    const id = resourceId(type, String(name));
    // built only for an error: formatting the location of every declaration costs more than compiling it
    const where = () => `${id.replaceAll("\0", "\\0")} (${displayPath(source.file)}:${source.line})`;
    if (typeof name !== "string" || name.length === 0) {
      throw new GalleyError(
        "RESOURCE_INVALID",
        `${type} at ${displayPath(source.file)}:${source.line} needs a name`,
        {
          hint: `declare it as r.${type}("name", { … })`,
        },
      );
    }
    const { common, own } = splitProps(input ?? {});
    if (resourceType.nameProperty && own[resourceType.nameProperty] === undefined)
      own[resourceType.nameProperty] = name;
    const ownResult = v.safeParse(resourceType.schema, own);
    if (!ownResult.success) throw invalid(where(), formatIssues(ownResult.issues, resourceType), type);
    const nul = nulProperty(ownResult.output as Record<string, unknown>);
    if (nul !== undefined) {
      throw invalid(
        where(),
        `${nul}: a NUL byte cannot be in a path, a command or a name (no system call accepts it)`,
        type,
      );
    }
    const commonResult = common === undefined ? noCommonProps : v.safeParse(commonSchema, common);
    if (!commonResult.success) throw invalid(where(), formatIssues(commonResult.issues), type);
    const c = commonResult.output;
    const actions =
      c.action === undefined ? [resourceType.actions[0]!] : Array.isArray(c.action) ? c.action : [c.action];
    for (const action of actions) {
      if (action !== "nothing" && !resourceType.actions.includes(action)) {
        throw invalid(
          where(),
          `unknown action "${action}"; ${type} has: ${[...resourceType.actions, "nothing"].join(", ")}`,
          type,
        );
      }
    }
    const resource: CatalogResource = {
      id,
      type,
      name,
      actions,
      props: ownResult.output as Record<string, unknown>,
      notifies: (c.notifies ?? []).map((n) => ({ action: n.action, target: n.resource, timing: n.timing })),
      requires: c.requires ?? [],
      before: c.before ?? [],
      ignoreFailure: c.ignoreFailure,
      retries: c.retries,
      retryDelay: c.retryDelay,
      sensitive: c.sensitive,
      source,
    };
    if (c.onlyIf) resource.onlyIf = c.onlyIf;
    if (c.notIf) resource.notIf = c.notIf;
    const subscribes = c.subscribes ?? [];
    const existing = declared.get(id);
    if (existing) {
      // compared before compile, so the earlier declaration's props are compared as declared
      const before = existing.declaration;
      const earlier = {
        ...existing.resource,
        props: before.props,
        requires: before.requires ?? existing.resource.requires,
      };
      if (fingerprintOf(earlier, before.subscribes) === fingerprintOf(resource, subscribes)) {
        // the same resource declared by a composite too: it counts among the composite's resources
        if (parent && !parent.children!.includes(id)) parent.children!.push(id);
        return new ResourceRef(id);
      }
      const first = existing.resource.source;
      throw new GalleyError(
        "RESOURCE_CONFLICT",
        `${where()} is declared again with different properties; first declared at ${displayPath(first.file)}:${first.line}`,
        { hint: "declare each resource once, or make both declarations identical" },
      );
    }
    const key = `${type}\u0000${resourceType.key(resource.props)}`;
    const sameKey = resourceType.sharedKeys ? undefined : keys.get(key);
    if (sameKey) {
      throw new GalleyError("RESOURCE_CONFLICT", `${where()} manages the same ${type} as ${sameKey}`, {
        hint: "declare each thing once; give one of them another name or path",
      });
    }
    keys.set(key, id);
    declared.set(id, { resource, declaration: { props: resource.props, subscribes } });
    if (parent) {
      // what a later identical declaration is compared with: the requires as declared
      declared.get(id)!.declaration.requires = [...resource.requires];
      inherit(resource, parent);
    }
    subscriptions.push(...subscribes.map((s) => ({ subscriber: id, ...s, where })));
    if (resourceType.compile) {
      const contextKey = `context:${file}`;
      let context = cache.get(contextKey) as CompileContext | undefined;
      if (!context) {
        context = compileContext(cookbook, file, options.runList, cache);
        cache.set(contextKey, context);
      }
      const failed = (error: unknown): GalleyError =>
        isGalleyError(error) && error.code !== "APPLY_FAILED"
          ? new GalleyError(
              error.code,
              `${where()}: ${error.message}`,
              error.hint ? { hint: error.hint, cause: error } : { cause: error },
            )
          : invalid(where(), error instanceof Error ? error.message : String(error), type);
      // most compiles are synchronous (a file with inline content); only reading files waits
      let settled: Promise<void> | undefined;
      try {
        const result = resourceType.compile(resource.props as never, context);
        if (result instanceof Promise) {
          settled = result.then(
            (props) => {
              resource.props = props;
            },
            (error) => {
              throw failed(error);
            },
          );
        } else resource.props = result;
      } catch (error) {
        settled = Promise.reject(failed(error));
      }
      if (settled) {
        settled.catch(() => {}); // observed by the await after the recipes, not an unhandled rejection
        pending.push(settled);
      }
    }
    if (isComposite(resourceType)) expand(resource, resourceType);
    return new ResourceRef(id);
  };

  // a composite's body declares its resources now, in its own cookbook, as children of the composite
  const expand = (resource: CatalogResource, type: CompositeType) => {
    resource.children = [];
    const context = makeContext(type.cookbook, resource.id, type.file, resource);
    const scope = { label: `${resource.id} (resource type ${type.type})`, file: type.file };
    const run = async () => {
      running.add(scope);
      for (const action of resource.actions) {
        if (action === "nothing") continue;
        try {
          await recipeScope.run(scope, () =>
            type.composite.body(context, { name: resource.name, action, props: resource.props }),
          );
        } catch (error) {
          if (isGalleyError(error)) throw error;
          throw new GalleyError(
            "RECIPE_FAILED",
            `${resource.id}: resource type ${type.type} failed${locationIn(error, type.file)}: ${error instanceof Error ? error.message : String(error)}`,
            { hint: `fix ${displayPath(type.file)} at that line`, cause: error },
          );
        }
      }
      running.delete(scope);
    };
    const done = run();
    includes.push(done);
    done.catch(() => {});
  };

  const subscriptions: {
    subscriber: string;
    action: string;
    resource: string;
    timing: "immediate" | "delayed";
    where: () => string;
  }[] = [];

  const recipes = async () => {
    for (const entry of await options.runList.entries()) await runRecipe(entry);
    while (includes.length > 0) await Promise.all(includes.splice(0));
    await Promise.all(pending);
  };
  // the first recipe still running is the one that holds the compile (includes run inside it)
  const holding = () => [...running].at(-1);
  // the recipes, and whatever they leave running, belong to this run: sensitive() registers in its registry
  await withCompileDeadline(
    withSecrets(secrets, recipes),
    options.deadlineMs ?? compileDeadlineMs(),
    holding,
  );
  // one turn of the event loop: a promise a recipe let fail unobserved is reported now, by the
  // command's handler, before anything is applied (not after the run, nor never)
  await new Promise((resolve) => setImmediate(resolve));

  const resources = [...declared.values()].map((d) => d.resource);
  // after the types' compile (rendered templates, file contents), and after every recipe could
  // register a secret: a resource holding a secret in any of its forms is sensitive
  for (const resource of resources) {
    if (!resource.sensitive && secrets.contains(resource.props)) resource.sensitive = true;
  }
  for (const s of subscriptions) {
    const source = declared.get(s.resource)?.resource;
    if (!source) throw missingTarget(s.where(), "subscribes to", s.resource, declared);
    source.notifies.push({ action: s.action, target: s.subscriber, timing: s.timing });
  }
  for (const resource of resources) checkReferences(resource, declared, options.types);
  const nodes = resources.map((resource) => {
    const type = options.types[resource.type]!;
    const autoRequires = type.autoRequires?.(resource.props) ?? [];
    // the path a resource manages is its name property's value (file path, git destination)
    const named = type.nameProperty ? resource.props[type.nameProperty] : undefined;
    const own = autoRequires.find((auto) => auto.path !== undefined && auto.path === named);
    return { resource, path: own?.path, autoRequires };
  });
  const edges = buildEdges(nodes);
  return {
    host: options.hostName,
    runList: options.runList.items,
    resources: orderResources(resources, edges),
    edges,
  };
}

function checkReferences(
  resource: CatalogResource,
  declared: Map<string, Declared>,
  types: Readonly<Record<string, ResourceType>>,
) {
  const where = () => `${resource.id} (${displayPath(resource.source.file)}:${resource.source.line})`;
  for (const id of [...resource.requires, ...resource.before]) {
    if (!declared.has(id)) throw missingTarget(where(), "refers to", id, declared);
  }
  for (const notification of resource.notifies) {
    const target = declared.get(notification.target)?.resource;
    if (!target) throw missingTarget(where(), "notifies", notification.target, declared);
    if (target.children) {
      throw new GalleyError(
        "RESOURCE_INVALID",
        `${where()} notifies ${target.id}, a composite: its resources are declared at compile time and cannot be run later`,
        {
          hint: `notify the resources inside it instead (${target.children.slice(0, 3).join(", ") || "none"})`,
        },
      );
    }
    const actions = types[target.type]!.actions;
    if (!actions.includes(notification.action) && notification.action !== "nothing") {
      throw new GalleyError(
        "RESOURCE_INVALID",
        `${where()} notifies ${target.id} with unknown action "${notification.action}"`,
        {
          hint: `${target.type} has: ${actions.join(", ")}`,
        },
      );
    }
  }
}

function missingTarget(
  where: string,
  verb: string,
  id: string,
  declared: Map<string, Declared>,
): GalleyError {
  const parsed = parseResourceId(id);
  const similar = [...declared.keys()]
    .filter((known) => parsed && known.startsWith(`${parsed.type}[`))
    .slice(0, 5);
  return new GalleyError("RESOURCE_NOT_FOUND", `${where} ${verb} ${id}, which is not declared in this run`, {
    hint: parsed
      ? `declare ${id} in a recipe of the run list${similar.length ? ` (declared ${parsed.type}s: ${similar.join(", ")})` : ""}`
      : `write resource ids as type[name], e.g. service[nginx]`,
  });
}

// the property holding a string with a NUL byte (file content aside: it is data, written as is)
function nulProperty(props: Record<string, unknown>): string | undefined {
  const stack: [string, unknown][] = Object.entries(props).filter(([key]) => key !== "content");
  while (stack.length > 0) {
    const [key, value] = stack.pop()!;
    if (typeof value === "string" && value.includes("\0")) return key;
    if (Array.isArray(value)) for (const [i, item] of value.entries()) stack.push([`${key}.${i}`, item]);
    else if (isPlainObject(value))
      for (const [k, item] of Object.entries(value)) stack.push([`${key}.${k}`, item]);
  }
  return undefined;
}

function splitProps(input: Record<string, unknown>) {
  let common: Record<string, unknown> | undefined;
  const own: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    const value = input[key];
    if (value === undefined) continue;
    if (!commonKeys.has(key)) own[key] = value;
    else {
      common ??= {};
      common[key] = value;
    }
  }
  return { common, own };
}

// what makes two declarations the same resource: not where they were, nor which composite holds them
function fingerprintOf(resource: CatalogResource, subscribes: unknown): string {
  const { source: _source, parent: _parent, children: _children, parentGuards: _guards, ...rest } = resource;
  return JSON.stringify({ rest, subscribes }, (_key, value) =>
    typeof value === "function" ? `fn:${value.toString()}` : value,
  );
}

function here(label: string, file: string, entry: (...args: never[]) => unknown): SourceLocation {
  return new CallerLocation(file, label, entry);
}

function invalid(where: string, message: string, type: string): GalleyError {
  return new GalleyError("RESOURCE_INVALID", `${where}: ${message}`, {
    hint: `see the properties of ${type} with: galley explain ${type}`,
  });
}

function unknownType(
  type: string,
  source: SourceLocation,
  types: Readonly<Record<string, ResourceType>>,
): GalleyError {
  return new GalleyError(
    "RESOURCE_UNKNOWN_TYPE",
    `unknown resource type "${type}" at ${displayPath(source.file)}:${source.line}`,
    {
      hint: `known types: ${Object.keys(types).sort().join(", ")}`,
    },
  );
}

async function importRecipe(file: string, label: string): Promise<Recipe> {
  let module: { default?: unknown };
  try {
    module = await importCookbookModule(file);
  } catch (error) {
    throw new GalleyError(
      "RECIPE_FAILED",
      `cannot load recipe ${label} (${displayPath(file)}): ${error instanceof Error ? error.message : String(error)}`,
      {
        hint: "fix the syntax error; recipes are TypeScript with erasable syntax only (no enums or namespaces)",
        cause: error,
      },
    );
  }
  if (typeof module.default !== "function") {
    throw new GalleyError(
      "RECIPE_FAILED",
      `recipe ${label} (${displayPath(file)}) has no default export function`,
      {
        hint: "write `export default function (r) { … }`",
      },
    );
  }
  return module.default as Recipe;
}

function locationIn(error: unknown, file: string): string {
  const stack = error instanceof Error ? (error.stack ?? "") : "";
  const url = pathToFileURL(file).href;
  const match = new RegExp(`${url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:(\\d+)`).exec(stack);
  return match ? ` at ${displayPath(file)}:${match[1]}` : "";
}

function compileContext(
  cookbook: string | undefined,
  file: string,
  runList: RunList,
  cache: Map<string, unknown>,
): CompileContext {
  const baseDir = cookbook ? runList.cookbookDir(cookbook) : path.dirname(file);
  return {
    cookbook,
    baseDir,
    cookbookFile: (kind, name) => {
      // a template used by 500 resources is read once per compile
      const key = `file:${baseDir}\u0000${kind}\u0000${name}`;
      let read = cache.get(key) as ReturnType<typeof readCookbookFile> | undefined;
      if (!read) {
        read = readCookbookFile(baseDir, kind, name, cookbook);
        read.catch(() => {});
        cache.set(key, read);
      }
      return read;
    },
    cache,
  };
}
