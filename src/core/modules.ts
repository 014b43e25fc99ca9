import { registerHooks } from "node:module";
import { pathToFileURL } from "node:url";
import { currentSecrets, Secrets, withSecrets } from "./secrets.ts";

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

// each module once per process, with what its top level marked sensitive while it was evaluated
const evaluated = new Map<string, Promise<{ module: { default?: unknown }; secrets: Secrets }>>();

/**
 * Imports a cookbook's module (a recipe, an attributes file, a resource type), "galley" resolvable.
 * A module is evaluated once per process, but each run that imports it gets the values its top
 * level marked sensitive (`sensitive()` outside any function) registered in its own registry.
 */
export async function importCookbookModule(file: string): Promise<{ default?: unknown }> {
  provideGalleyModule();
  loadedModules.add(file);
  let entry = evaluated.get(file);
  if (!entry) {
    const secrets = new Secrets();
    entry = withSecrets(secrets, () => import(pathToFileURL(file).href)).then((module) => ({
      module: module as { default?: unknown },
      secrets,
    }));
    evaluated.set(file, entry);
    // a module that failed to load is tried again by the next import (Node keeps its error)
    entry.catch(() => evaluated.delete(file));
  }
  const { module, secrets } = await entry;
  currentSecrets().register(secrets.values());
  return module;
}
