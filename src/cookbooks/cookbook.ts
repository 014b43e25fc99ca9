import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as v from "valibot";
import { type Attributes, isPlainObject } from "../core/attributes.ts";
import { type ErrorCode, GalleyError } from "../core/errors.ts";
import type { Facts } from "../core/host.ts";
import { importCookbookModule } from "../core/modules.ts";
import { registerSecrets, secretValues } from "../core/secrets.ts";
import { decodeYamlText, loadYaml, readYamlText, reservedKeys } from "../core/yaml.ts";
import { isEncrypted } from "../secrets/envelope.ts";
import { isConstraint, isVersion } from "./versions.ts";

/** A versioned folder of recipes, attribute defaults, templates and files. */
export interface Cookbook {
  name: string;
  version: string;
  description: string;
  /** cookbook name → version constraint */
  depends: Record<string, string>;
  /** the platforms it runs on (os-release ID or family, e.g. debian, ubuntu); undefined: any */
  supports?: string[] | undefined;
  dir: string;
}

// `constructor` would vanish from a depends mapping (valibot drops it): no cookbook can bear it
const notReserved = v.check(
  (name: string) => !reservedKeys.has(name),
  "a cookbook cannot be named __proto__, constructor or prototype (JavaScript objects reserve them)",
);

const metadataSchema = v.strictObject({
  name: v.pipe(
    v.string(),
    v.regex(/^[a-z][a-z0-9_-]*$/, "lowercase letters, digits, - and _, starting with a letter"),
    notReserved,
  ),
  version: v.pipe(v.string(), v.check(isVersion, "a semantic version like 1.0.0")),
  description: v.optional(v.string(), ""),
  depends: v.pipe(
    v.optional(
      v.union([
        v.array(v.string()),
        v.record(
          v.string(),
          v.pipe(
            v.string(),
            v.check(isConstraint, 'a version constraint like "^1.2", "~2.3.1", ">= 1.0 < 2" or "*"'),
          ),
        ),
      ]),
      () => ({}),
    ),
    v.transform(
      (value): Record<string, string> =>
        Array.isArray(value) ? Object.fromEntries(value.map((name) => [name, "*"])) : value,
    ),
    v.check(
      (depends) => !Object.keys(depends).some((name) => reservedKeys.has(name)),
      "a cookbook cannot be named __proto__, constructor or prototype (JavaScript objects reserve them)",
    ),
  ),
  supports: v.optional(v.array(v.string())),
});

/** The metadata of the cookbook in `dir` (its cookbook.yaml), or undefined when it has none. */
export async function loadCookbook(dir: string): Promise<Cookbook | undefined> {
  const file = path.join(dir, "cookbook.yaml");
  const text = await readYamlText(file, { code: "COOKBOOK_INVALID" });
  if (text === undefined) return undefined;
  return { ...parseCookbookMetadata(file, text), dir };
}

/** Validates a cookbook.yaml's text; `file` names it in errors (a path, or where in a repository). */
export function parseCookbookMetadata(
  file: string,
  text: string,
  code: ErrorCode = "COOKBOOK_INVALID",
): Omit<Cookbook, "dir"> {
  return parseYamlFile(file, text, metadataSchema, code);
}

/** Loads every cookbook under `dir` (one folder each, with cookbook.yaml). */
export async function loadCookbooks(dir: string): Promise<Map<string, Cookbook>> {
  let entries: string[];
  try {
    entries = (await fs.readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
  } catch {
    throw new GalleyError("COOKBOOK_NOT_FOUND", `no cookbooks folder at ${dir}`, {
      hint: "run from your kitchen's root (the folder holding cookbooks/), or pass --cookbooks DIR",
    });
  }
  const cookbooks = new Map<string, Cookbook>();
  for (const entry of entries.sort()) {
    const metadata = await loadCookbook(path.join(dir, entry));
    if (!metadata) continue;
    const existing = cookbooks.get(metadata.name);
    if (existing) {
      throw new GalleyError(
        "COOKBOOK_INVALID",
        `two cookbooks are named ${metadata.name}: ${existing.dir} and ${metadata.dir}`,
        {
          hint: "give each cookbook a unique name in its cookbook.yaml",
        },
      );
    }
    cookbooks.set(metadata.name, metadata);
  }
  return cookbooks;
}

/** The file of `recipe` in `cookbook`, or a clear error listing the recipes that exist. */
export async function recipeFile(cookbook: Cookbook, recipe: string): Promise<string> {
  // a recipe is a file name in recipes/: `web::../../x` must not reach outside the cookbook
  if (recipe.startsWith(".") || /[/\\\0]/.test(recipe)) {
    throw new GalleyError("RECIPE_NOT_FOUND", `${cookbook.name}::${recipe} is not a recipe name`, {
      hint: `name a file of ${path.join(cookbook.dir, "recipes")} without its extension, e.g. ${cookbook.name}::default`,
    });
  }
  const dir = path.join(cookbook.dir, "recipes");
  for (const ext of [".ts", ".js", ".mjs"]) {
    const file = path.join(dir, recipe + ext);
    if (await exists(file)) return file;
  }
  const known = (await fs.readdir(dir).catch(() => [] as string[])).map(
    (f) => `${cookbook.name}::${f.replace(/\.(ts|js|mjs)$/, "")}`,
  );
  throw new GalleyError(
    "RECIPE_NOT_FOUND",
    `no recipe ${cookbook.name}::${recipe} (looked for ${path.join(dir, recipe)}.ts)`,
    {
      hint: known.length
        ? `recipes of ${cookbook.name}: ${known.join(", ")}`
        : `create ${path.join(dir, recipe)}.ts`,
    },
  );
}

/** The cookbook's attribute defaults: attributes/default.* first, then the others by name; YAML or TypeScript. */
export async function loadCookbookAttributes(
  cookbook: Cookbook,
  facts: Facts,
  secrets: SecretOptions = {},
): Promise<{ file: string; values: Attributes; sensitive: boolean }[]> {
  const dir = path.join(cookbook.dir, "attributes");
  const files = (await fs.readdir(dir).catch(() => [] as string[]))
    .filter((f) => /\.(ya?ml|json|ts|js|mjs)$/.test(f))
    .sort(
      (a, b) => Number(!a.startsWith("default.")) - Number(!b.startsWith("default.")) || a.localeCompare(b),
    );
  const result = [];
  for (const name of files) {
    const file = path.join(dir, name);
    result.push({ file, ...(await readAttributeFile(file, facts, secrets)) });
  }
  return result;
}

/** How to decrypt encrypted attribute files: the key, read when the first one is met. */
export interface SecretOptions {
  key?: () => Promise<Buffer>;
}

/**
 * Reads one attribute file: YAML/JSON data, an encrypted file (`galley secrets`), or a module
 * whose default export is an object or a function of facts. An encrypted file's values are
 * registered as secrets: scrubbed from everything Galley prints, reports or stores.
 */
export async function loadAttributeFile(
  file: string,
  facts: Facts,
  secrets: SecretOptions = {},
): Promise<Attributes> {
  return (await readAttributeFile(file, facts, secrets)).values;
}

/** Reads one attribute file, as loadAttributeFile does, and says whether it was encrypted. */
export async function readAttributeFile(
  file: string,
  facts: Facts,
  secrets: SecretOptions = {},
): Promise<{ values: Attributes; sensitive: boolean }> {
  let values: unknown;
  if (/\.(ts|js|mjs)$/.test(file)) {
    const module = await importCookbookModule(file);
    values = typeof module.default === "function" ? await module.default({ facts }) : module.default;
  } else {
    const bytes = await fs.readFile(file).catch(() => {
      throw new GalleyError("FILE_NOT_FOUND", `attributes file ${file} does not exist`, {
        hint: "check the path",
      });
    });
    const text = decodeYamlText(file, bytes, { code: "ATTRIBUTES_INVALID" });
    if (isEncrypted(text)) return { values: await loadSecretFile(file, secrets), sensitive: true };
    values = parseYamlFile(file, text, v.unknown(), "ATTRIBUTES_INVALID");
  }
  if (values === undefined || values === null) return { values: {}, sensitive: false };
  if (!isPlainObject(values)) {
    throw new GalleyError(
      "ATTRIBUTES_INVALID",
      `${file}: attributes must be an object (a mapping of names to values)`,
      {
        hint: "write top-level keys, e.g. `app: { port: 8080 }`",
      },
    );
  }
  return { values, sensitive: false };
}

// `password: !sensitive hunter2`: a value scrubbed from everything Galley prints, reports or stores
const sensitiveTag = {
  tag: "!sensitive",
  resolve(value: string): string {
    registerSecrets([value]);
    return value;
  },
};

/**
 * Parses YAML (JSON is YAML) and validates it; errors name the file, line and field, with `code`
 * and, when given, `hint` (else: fix that line or field).
 */
export function parseYamlFile<T>(
  file: string,
  text: string,
  schema: v.GenericSchema<unknown, T>,
  code: ErrorCode = "COOKBOOK_INVALID",
  hint?: string,
): T {
  const { value, doc, lineAt } = loadYaml(file, text, {
    code,
    ...(hint === undefined ? {} : { hint }),
    customTags: [sensitiveTag],
    allowNul: code === "ATTRIBUTES_INVALID",
  });
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = (issue.path ?? []).map((item) => item.key as string | number);
  // a missing field has no node: the line of the nearest object that is there
  let node: { range?: [number, number] } | undefined;
  for (let depth = path.length; node?.range === undefined && depth >= 0; depth--)
    node = doc.getIn(path.slice(0, depth), true) as typeof node;
  const offset = node?.range?.[0] ?? (doc.contents as { range?: [number] } | null)?.range?.[0] ?? 0;
  // a strict object reports a key it does not know as expecting none
  const unknownKey = issue.type === "strict_object" && issue.expected === "never";
  const field = unknownKey ? path.slice(0, -1).join(".") || "(top level)" : path.join(".") || "(top level)";
  const message = unknownKey ? `unknown field "${String(path.at(-1))}"` : issue.message;
  throw new GalleyError(code, `${file}:${lineAt(offset)}: ${field}: ${message}`, {
    hint: hint ?? "fix that field and run again",
  });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

async function loadSecretFile(file: string, secrets: SecretOptions): Promise<Attributes> {
  if (!secrets.key) {
    throw new GalleyError("SECRET_INVALID", `${file} is encrypted, and no key was given to decrypt it`, {
      hint: "pass --key-file FILE, or set GALLEY_SECRET_KEY_FILE",
    });
  }
  // node:crypto and the vault load only for an encrypted file
  const { loadSecretAttributes } = await import("../secrets/vault.ts");
  const values = await loadSecretAttributes(file, await secrets.key());
  registerSecrets(secretValues(values));
  return values as Attributes;
}
