import { registerHooks } from "node:module";
import { pathToFileURL } from "node:url";

let provided = false;

/**
 * Makes `import { composite, v } from "galley"` work in recipes, attribute files and resource
 * definitions wherever the kitchen is, without installing Galley into it: the specifier resolves
 * to this copy of Galley. Registered once, before the first cookbook module is imported.
 */
export function provideGalleyModule(): void {
  if (provided) return;
  provided = true;
  const url = new URL("../index.ts", import.meta.url).href;
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === "galley") return { url, shortCircuit: true };
      return nextResolve(specifier, context);
    },
  });
}

/** Every cookbook module imported in this process: a stack trace through one of them is user code. */
export const loadedModules = new Set<string>();

/** Imports a cookbook's module (a recipe, an attributes file, a resource type), "galley" resolvable. */
export async function importCookbookModule(file: string): Promise<{ default?: unknown }> {
  provideGalleyModule();
  loadedModules.add(file);
  return (await import(pathToFileURL(file).href)) as { default?: unknown };
}
