import type { RecipeContext } from "../../core/recipe.ts";

/**
 * Galley's own first recipe of every setup: the packages of the instance's layers (each once,
 * in layer order), before the layers' setup recipes.
 */
export default function packages(r: RecipeContext): void {
  const mine = r.stack.instance.layers;
  const seen = new Set<string>();
  for (const layer of r.stack.layers) {
    if (!mine.includes(layer.name)) continue;
    for (const name of layer.packages) {
      if (seen.has(name)) continue;
      seen.add(name);
      r.package(name);
    }
  }
}
