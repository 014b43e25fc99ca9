import { existsSync, readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { Attributes } from "../core/attributes.ts";
import { GalleyError } from "../core/errors.ts";
import type { Facts } from "../core/host.ts";
import type { RecipeEntry, RunList } from "../core/runlist.ts";
import { isEncrypted } from "../secrets/envelope.ts";
import {
  type Cookbook,
  loadCookbookAttributes,
  loadCookbooks,
  readAttributeFile,
  type SecretOptions,
  recipeFile,
} from "./cookbook.ts";
import { AttributeSet } from "./precedence.ts";
import { satisfies } from "./versions.ts";
import { yamlLines } from "./yaml-lines.ts";

/**
 * A run list over a cookbooks folder: items are `cookbook` (its default recipe),
 * `cookbook::recipe`, or a path to a single recipe file (`./site.ts`).
 */
export class CookbookRunList implements RunList {
  readonly items: string[];
  readonly cookbooks: Map<string, Cookbook>;

  private constructor(items: string[], cookbooks: Map<string, Cookbook>) {
    this.items = items;
    this.cookbooks = cookbooks;
  }

  /**
   * Loads the kitchen's cookbooks (only needed when an item names a cookbook) and checks every
   * item: the locked versions when the kitchen has cookbooks.yaml, or the folder has a lock;
   * else the plain folder. `cookbooks` (from a bundle) replaces the loading.
   */
  static async load(
    items: string[],
    cookbooksDir: string,
    options: { cookbooks?: Map<string, Cookbook> } = {},
  ): Promise<CookbookRunList> {
    if (items.length === 0) {
      throw new GalleyError("USAGE", "the run list is empty", {
        hint: "name recipes to run: galley apply web, galley apply web::db, or galley apply ./site.ts",
      });
    }
    const needsCookbooks = items.some((item) => !isRecipeFile(item));
    const root = path.dirname(cookbooksDir);
    const locked =
      existsSync(path.join(root, "cookbooks.yaml")) || existsSync(path.join(cookbooksDir, "cookbooks.lock"));
    let cookbooks = options.cookbooks ?? new Map<string, Cookbook>();
    if (!options.cookbooks && locked) {
      // sources, lock and git load only for a kitchen that has them
      const { kitchenCookbooks } = await import("./kitchen.ts");
      cookbooks = (await kitchenCookbooks({ root, cookbooksDir })).cookbooks;
    } else if (!options.cookbooks && (needsCookbooks || existsSync(cookbooksDir))) {
      cookbooks = await loadCookbooks(cookbooksDir);
    }
    const runList = new CookbookRunList(items, cookbooks);
    for (const item of items)
      if (!isRecipeFile(item)) runList.#cookbook(splitItem(item).cookbook, `run list item "${item}"`);
    for (const cookbook of cookbooks.values()) {
      for (const [dependency, constraint] of Object.entries(cookbook.depends)) {
        const found = runList.#cookbook(dependency, `cookbook ${cookbook.name}'s depends`);
        if (!satisfies(found.version, constraint)) {
          throw new GalleyError(
            "DEPENDENCY_CONFLICT",
            `cookbook ${cookbook.name} ${cookbook.version} depends on ${dependency} ${constraint}, but ${dependency} is ${found.version} (${found.dir})`,
            {
              hint: `use a version of ${dependency} that satisfies ${constraint}, or change the constraint in ${path.join(cookbook.dir, "cookbook.yaml")}`,
            },
          );
        }
      }
    }
    return runList;
  }

  async entries(): Promise<RecipeEntry[]> {
    const entries: RecipeEntry[] = [];
    for (const item of this.items) {
      if (isRecipeFile(item)) {
        const file = path.resolve(item);
        if (
          !(await fs.stat(file).then(
            (s) => s.isFile(),
            () => false,
          ))
        ) {
          throw new GalleyError("RECIPE_NOT_FOUND", `no recipe file ${item}`, { hint: "check the path" });
        }
        entries.push({ cookbook: undefined, recipe: path.basename(file).replace(/\.[cm]?[jt]s$/, ""), file });
      } else {
        const { cookbook, recipe } = splitItem(item);
        entries.push({ cookbook, recipe, file: await recipeFile(this.#cookbook(cookbook, item), recipe) });
      }
    }
    return entries;
  }

  async resolveInclude(
    name: string,
    fromCookbook: string | undefined,
    fromLabel: string,
  ): Promise<RecipeEntry> {
    const { cookbook, recipe } = splitItem(name);
    const target = this.#cookbook(cookbook, `r.include("${name}") in ${fromLabel}`);
    if (
      fromCookbook &&
      cookbook !== fromCookbook &&
      !(cookbook in this.cookbooks.get(fromCookbook)!.depends)
    ) {
      throw new GalleyError(
        "COOKBOOK_INVALID",
        `${fromLabel} includes ${name}, but cookbook ${fromCookbook} does not depend on ${cookbook}`,
        {
          hint: `add it to depends in ${path.join(this.cookbookDir(fromCookbook), "cookbook.yaml")}: depends: { ${cookbook}: "*" }`,
        },
      );
    }
    return { cookbook, recipe, file: await recipeFile(target, recipe) };
  }

  dependsOn(from: string, to: string): boolean {
    return to in (this.cookbooks.get(from)?.depends ?? {});
  }

  cookbookDir(cookbook: string): string {
    return this.cookbooks.get(cookbook)!.dir;
  }

  /**
   * Cookbooks whose attributes apply, dependencies first: the run list's cookbooks and what they
   * depend on; every cookbook when the run list has a recipe file (it can include any of them).
   */
  attributeOrder(): Cookbook[] {
    const roots = this.items.some(isRecipeFile)
      ? [...this.cookbooks.keys()]
      : this.items.map((item) => splitItem(item).cookbook);
    const order: Cookbook[] = [];
    const visited = new Set<string>();
    const visit = (name: string) => {
      if (visited.has(name)) return;
      visited.add(name);
      const cookbook = this.cookbooks.get(name)!;
      for (const dependency of Object.keys(cookbook.depends)) visit(dependency);
      order.push(cookbook);
    };
    for (const root of roots) visit(root);
    return order;
  }

  /**
   * The attribute layers of a run: cookbook defaults in dependency order, the run's attribute files
   * in the order given, and the host's facts (automatic, always winning). Recipes add overrides.
   */
  async attributeSet(
    facts: Facts,
    attributeFiles: string[],
    secrets: SecretOptions = {},
  ): Promise<AttributeSet> {
    checkSupports(this.attributeOrder(), facts);
    const set = new AttributeSet();
    for (const cookbook of this.attributeOrder()) {
      for (const { file, values, sensitive } of await loadCookbookAttributes(cookbook, facts, secrets)) {
        const label = `cookbook ${cookbook.name}: ${path.relative(cookbook.dir, file)}`;
        set.add({ level: "default", label, file, line: lazyLines(file), sensitive }, values);
      }
    }
    for (const name of attributeFiles) {
      const file = path.resolve(name);
      const { values, sensitive } = await readAttributeFile(file, facts, secrets);
      set.add({ level: "run", label: `--attrs ${name}`, file, line: lazyLines(file), sensitive }, values);
    }
    set.add({ level: "automatic", label: "facts" }, facts as unknown as Attributes);
    return set;
  }

  /** The merged attributes of the run's files and facts (no recipe overrides). */
  async attributes(facts: Facts, attributeFiles: string[], secrets: SecretOptions = {}): Promise<Attributes> {
    return (await this.attributeSet(facts, attributeFiles, secrets)).merged();
  }

  #cookbook(name: string, context: string): Cookbook {
    const cookbook = this.cookbooks.get(name);
    if (cookbook) return cookbook;
    const known = [...this.cookbooks.keys()];
    throw new GalleyError("COOKBOOK_NOT_FOUND", `${context}: no cookbook named ${name}`, {
      hint: known.length
        ? `cookbooks found: ${known.join(", ")}`
        : "create cookbooks/<name>/cookbook.yaml, or pass --cookbooks DIR",
    });
  }
}

function isRecipeFile(item: string): boolean {
  return /\.[cm]?[jt]s$/.test(item) || item.includes("/");
}

function splitItem(item: string): { cookbook: string; recipe: string } {
  const [cookbook, recipe] = item.split("::");
  return { cookbook: cookbook!, recipe: recipe || "default" };
}

// where a key is set in a YAML or JSON file: parsed again only when an explanation asks
function lazyLines(file: string): (keyPath: readonly string[]) => number | undefined {
  if (/\.(ts|js|mjs)$/.test(file)) return () => undefined;
  let lookup: ((keyPath: readonly string[]) => number | undefined) | undefined;
  return (keyPath) => {
    if (!lookup) {
      let text = "";
      try {
        text = readFileSync(file, "utf8");
      } catch {
        return undefined;
      }
      lookup = isEncrypted(text) ? () => undefined : yamlLines(text);
    }
    return lookup(keyPath);
  };
}

/** A cookbook of the run whose `supports` names neither this host's platform nor its family stops the run. */
function checkSupports(cookbooks: Cookbook[], facts: Facts): void {
  const platforms = new Set([facts.os.id, ...facts.os.family.split(/\s+/)].filter(Boolean));
  for (const cookbook of cookbooks) {
    if (!cookbook.supports || cookbook.supports.some((platform) => platforms.has(platform))) continue;
    throw new GalleyError(
      "PLATFORM_UNSUPPORTED",
      `cookbook ${cookbook.name} supports ${cookbook.supports.join(", ")}; this host is ${facts.os.id} (family ${facts.os.family})`,
      {
        hint: `run it on a supported platform, or add ${facts.os.id} to supports in ${path.join(cookbook.dir, "cookbook.yaml")} once it works there`,
      },
    );
  }
}
