import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "./errors.ts";

/** One recipe to run: from a cookbook, or a single recipe file. */
export interface RecipeEntry {
  cookbook: string | undefined;
  recipe: string;
  file: string;
}

/** What compile needs from the cookbooks: the run list's recipes and how to resolve includes. */
export interface RunList {
  /** the run list as given: `cookbook`, `cookbook::recipe` or a recipe file */
  items: string[];
  entries(): Promise<RecipeEntry[]>;
  /** resolves `r.include(name)` from a recipe of `fromCookbook` (undefined: a recipe file) */
  resolveInclude(name: string, fromCookbook: string | undefined, fromLabel: string): Promise<RecipeEntry>;
  cookbookDir(cookbook: string): string;
  /** whether cookbook `from` declares `to` in its depends (directly) */
  dependsOn(from: string, to: string): boolean;
}

/** Reads `files/<name>` or `templates/<name>` of a cookbook, refusing paths that leave it. */
export async function readCookbookFile(
  baseDir: string,
  kind: "files" | "templates",
  name: string,
  cookbook: string | undefined,
): Promise<{ path: string; data: Uint8Array }> {
  const root = path.join(baseDir, kind);
  const file = path.resolve(root, name);
  if (!file.startsWith(root + path.sep)) {
    throw new GalleyError("FILE_NOT_FOUND", `${kind.slice(0, -1)} "${name}" is outside ${root}`, {
      hint: `name a file inside the ${kind}/ folder`,
    });
  }
  try {
    return { path: file, data: await fs.readFile(file) };
  } catch {
    throw new GalleyError(
      "FILE_NOT_FOUND",
      `no ${kind.slice(0, -1)} "${name}" in ${cookbook ? `cookbook ${cookbook}` : baseDir} (looked for ${file})`,
      {
        hint: `create ${file}, or fix the name`,
      },
    );
  }
}
