import * as fs from "node:fs/promises";
import * as path from "node:path";
import { tempDir } from "../../src/resources/testing.ts";

export interface CookbookSpec {
  version?: string;
  depends?: Record<string, string>;
  recipes?: Record<string, string>;
  templates?: Record<string, string>;
  files?: Record<string, string>;
  attributes?: Record<string, string>;
  /** resources/<type>.ts: the cookbook's own resource types */
  resources?: Record<string, string>;
}

/** Writes a kitchen (cookbooks/<name>/…) into a fresh temp dir and returns its path. */
export async function makeKitchen(cookbooks: Record<string, CookbookSpec>): Promise<string> {
  const root = await tempDir("galley-kitchen-");
  for (const [name, spec] of Object.entries(cookbooks)) {
    const dir = path.join(root, "cookbooks", name);
    await fs.mkdir(dir, { recursive: true });
    const depends = Object.entries(spec.depends ?? {})
      .map(([dep, constraint]) => `\n  ${dep}: "${constraint}"`)
      .join("");
    await fs.writeFile(
      path.join(dir, "cookbook.yaml"),
      `name: ${name}\nversion: ${spec.version ?? "1.0.0"}\ndescription: test cookbook\n${depends ? `depends:${depends}\n` : ""}`,
    );
    for (const kind of ["recipes", "templates", "files", "attributes", "resources"] as const) {
      for (const [file, text] of Object.entries(spec[kind] ?? {})) {
        const target = path.join(
          dir,
          kind,
          (kind === "recipes" || kind === "resources") && !/\.\w+$/.test(file) ? `${file}.ts` : file,
        );
        await fs.mkdir(path.dirname(target), { recursive: true });
        await fs.writeFile(target, text);
      }
    }
  }
  return root;
}

/** A recipe module's text from the body of its function (which sees `r`). */
export function recipe(body: string): string {
  return `export default async function (r) {\n${body}\n}\n`;
}
