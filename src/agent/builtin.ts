import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { GalleyError } from "../core/errors.ts";

// Galley's own recipe files (src/lifecycle/recipes/*.ts) travel in a job as `galley:<path under
// src/>`: the agent runs its own install's copy of them.

const prefix = "galley:";
const srcDir = fileURLToPath(new URL("../", import.meta.url));

/** Whether a run list item names one of Galley's built-in recipe files. */
export function isBuiltin(item: string): boolean {
  return item.startsWith(prefix);
}

/**
 * The file of a built-in recipe in this install; other items are returned unchanged.
 *
 * @example resolveBuiltin("galley:lifecycle/recipes/packages.ts") // "/usr/lib/galley/src/lifecycle/recipes/packages.ts"
 */
export function resolveBuiltin(item: string): string {
  if (!isBuiltin(item)) return item;
  const relative = item.slice(prefix.length);
  const file = path.resolve(srcDir, relative);
  if (relative === "" || path.isAbsolute(relative) || !file.startsWith(srcDir) || !/\.ts$/.test(file))
    throw new GalleyError("RECIPE_NOT_FOUND", `run list item ${item} is not a Galley recipe file`, {
      hint: "built-in recipes are named galley:<path under Galley's src/>, e.g. galley:lifecycle/recipes/packages.ts",
    });
  return file;
}
