import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isCustomDefinition, registerDefinition } from "../core/custom.ts";
import { GalleyError } from "../core/errors.ts";
import { importCookbookModule } from "../core/modules.ts";
import type { ResourceType } from "../core/resource.ts";
import { resourceTypes } from "../resources/index.ts";
import type { Cookbook } from "./cookbook.ts";

/** The method and type name of a cookbook's `resources/<file>`: `<cookbook>_<file>`, dashes as underscores. */
export function customTypeName(cookbook: string, file: string): string {
  return `${cookbook}_${file}`.replaceAll("-", "_");
}

/**
 * The resource types the cookbooks define in `resources/*.ts`, by type name. Each file's default
 * export is a `composite({ … })` or `resourceType({ … })` from "galley".
 */
export async function loadCustomTypes(
  cookbooks: Iterable<Cookbook>,
): Promise<Record<string, ResourceType & { cookbook: string; file: string }>> {
  const types: Record<string, ResourceType & { cookbook: string; file: string }> = {};
  for (const cookbook of cookbooks) {
    const dir = path.join(cookbook.dir, "resources");
    const files = (await fs.readdir(dir).catch(() => [] as string[]))
      .filter((f) => /\.(ts|js|mjs)$/.test(f))
      .sort();
    for (const name of files) {
      const file = path.join(dir, name);
      const base = name.replace(/\.(ts|js|mjs)$/, "");
      if (!/^[a-z][a-z0-9_]*$/.test(base)) {
        throw new GalleyError(
          "COOKBOOK_INVALID",
          `${file}: a resource type's file name must be lowercase letters, digits and _`,
          {
            hint: `rename it, e.g. ${path.join(dir, base.toLowerCase().replace(/[^a-z0-9_]/g, "_"))}.ts`,
          },
        );
      }
      const type = customTypeName(cookbook.name, base);
      if (type in resourceTypes || types[type]) {
        throw new GalleyError(
          "COOKBOOK_INVALID",
          `${file} defines resource type ${type}, which already exists`,
          {
            hint: "rename the file: a cookbook's types are named <cookbook>_<file>",
          },
        );
      }
      types[type] = registerDefinition(type, cookbook.name, file, await importDefinition(file));
    }
  }
  return types;
}

async function importDefinition(file: string) {
  let module: { default?: unknown };
  try {
    module = await importCookbookModule(file);
  } catch (error) {
    throw new GalleyError(
      "COOKBOOK_INVALID",
      `cannot load resource type ${file}: ${error instanceof Error ? error.message : String(error)}`,
      { hint: "fix the error in that file", cause: error },
    );
  }
  if (!isCustomDefinition(module.default)) {
    throw new GalleyError("COOKBOOK_INVALID", `${file} does not define a resource type`, {
      hint: 'export default composite({ … }) or resourceType({ … }), both from "galley"',
    });
  }
  return module.default;
}

/** The built-in types plus `custom`, without loading the built-in modules until they are used. */
export function typeRegistry(custom: Record<string, ResourceType>): Readonly<Record<string, ResourceType>> {
  const types: Record<string, ResourceType> = Object.create(null);
  const builtins = resourceTypes as Readonly<Record<string, ResourceType>>;
  for (const name of Object.keys(builtins)) {
    Object.defineProperty(types, name, { get: () => builtins[name], enumerable: true });
  }
  return Object.assign(types, custom);
}
