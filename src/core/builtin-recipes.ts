import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { GalleyError } from "./errors.ts";

// Galley's own recipe files (src/lifecycle/recipes/*.ts) are run by path. A converge job sent to an
// agent names them `galley:<path relative to src/>`, and the agent resolves that against its own
// install: both sides map them here, so they cannot disagree.

/** The prefix of a built-in recipe item in a converge job's run list. */
export const builtinPrefix = "galley:";

/** This install's src/ folder (where Galley's own recipe files are). */
export const galleySrcDir = fileURLToPath(new URL("..", import.meta.url));

/**
 * The run-list item a built-in recipe file travels as: `galley:` and its path relative to src/.
 *
 * @example builtinItem("/opt/galley/current/src/lifecycle/recipes/packages.ts") // "galley:lifecycle/recipes/packages.ts"
 */
export function builtinItem(file: string, srcDir = galleySrcDir): string {
  const relative = path.relative(srcDir, path.resolve(file));
  if (relative.startsWith("..") || path.isAbsolute(relative) || !relative.endsWith(".ts")) {
    throw new GalleyError("USAGE", `${file} is not one of Galley's own recipe files (under ${srcDir})`);
  }
  return `${builtinPrefix}${relative.split(path.sep).join("/")}`;
}

/** Whether a run-list item names one of Galley's own recipe files. */
export function isBuiltinItem(item: string): boolean {
  return item.startsWith(builtinPrefix);
}

/**
 * The file a `galley:` item names in the install whose src/ is `srcDir`; any other item unchanged.
 * An item climbing out of src/ is refused.
 *
 * @example resolveBuiltin("galley:lifecycle/recipes/packages.ts", "/opt/galley/current/src") // "/opt/galley/current/src/lifecycle/recipes/packages.ts"
 */
export function resolveBuiltin(item: string, srcDir = galleySrcDir): string {
  if (!isBuiltinItem(item)) return item;
  const relative = item.slice(builtinPrefix.length);
  const parts = relative.split("/");
  if (
    relative === "" ||
    parts.some((part) => part === ".." || part === "" || part === ".") ||
    !relative.endsWith(".ts")
  ) {
    throw new GalleyError("USAGE", `"${item}" does not name one of Galley's own recipe files`, {
      hint: "a built-in item is galley:<path under src/ ending in .ts>, e.g. galley:lifecycle/recipes/packages.ts",
    });
  }
  return path.join(srcDir, ...parts);
}
