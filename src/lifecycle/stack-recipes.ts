import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { loadCookbooks } from "../cookbooks/cookbook.ts";
import { loadSources } from "../cookbooks/sources.ts";
import { yamlLines } from "../cookbooks/yaml-lines.ts";
import { GalleyError } from "../core/errors.ts";
import { lifecycleEvents, type StackFile } from "../stacks/schema.ts";

/**
 * Checks that every recipe the stack's layers name belongs to a cookbook of the kitchen (the
 * entries of its cookbooks.yaml, or the cookbooks folder), and, for a cookbook in the folder, that
 * the recipe file exists: a typo is STACK_INVALID naming the layer, the event and the line, when
 * the stack is opened rather than on every host at the first event.
 */
export async function checkStackRecipes(file: string, stack: StackFile, cookbooksDir: string): Promise<void> {
  const sourcesFile = path.join(path.dirname(cookbooksDir), "cookbooks.yaml");
  const sources = existsSync(sourcesFile) ? await loadSources(path.dirname(cookbooksDir)) : undefined;
  const local = existsSync(cookbooksDir) ? await loadCookbooks(cookbooksDir) : new Map();
  const known = new Set<string>([...(sources?.cookbooks.keys() ?? []), ...local.keys()]);
  let lineOf: ((keys: string[]) => number | undefined) | undefined;
  for (const [li, layer] of stack.layers.entries()) {
    for (const event of lifecycleEvents) {
      for (const [i, item] of (layer.recipes[event] ?? []).entries()) {
        // a recipe file's path is checked when it runs
        if (item.includes("/") || /\.[cm]?[jt]s$/.test(item)) continue;
        const [cookbook = "", recipe = "default"] = item.split("::");
        const dir = local.get(cookbook)?.dir as string | undefined;
        const missing = !known.has(cookbook)
          ? `names no cookbook of the kitchen (${[...known].sort().join(", ") || "none"})`
          : dir &&
              !["ts", "js", "mjs"].some((ext) => existsSync(path.join(dir, "recipes", `${recipe}.${ext}`)))
            ? `names no recipe of cookbook ${cookbook} (no recipes/${recipe}.ts in ${dir})`
            : undefined;
        if (!missing) continue;
        lineOf ??= yamlLines(await fs.readFile(file, "utf8"));
        const line = lineOf(["layers", String(li), "recipes", event, String(i)]);
        throw new GalleyError(
          "STACK_INVALID",
          `${file}${line ? `:${line}` : ""}: layer ${layer.name}, ${event}: recipe ${item} ${missing}`,
          { hint: "fix the recipe's name in the stack file, or add the cookbook to the kitchen" },
        );
      }
    }
  }
}
