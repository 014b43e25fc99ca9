import { parseYamlForLines, readYamlText } from "../core/yaml.ts";
import { GalleyError } from "../core/errors.ts";
import { parseYamlFile } from "../cookbooks/cookbook.ts";
import { type StackFile, stackSchema } from "./schema.ts";
import { resolveStackSecrets, type StackSecretOptions } from "./secrets.ts";

const hint = "see docs/stacks.md for the stack file's fields";

/**
 * Reads and validates a stack file: the schema first (file:line and the field on error), then
 * what a schema cannot say: names unique, every layer an instance or app names exists. Its
 * `secrets:` files are decrypted with `options.key` and merged over its attributes, and
 * `{ secret: … }` environment values filled in, all registered as secrets of the run (secrets.ts).
 *
 * @example const stack = await loadStack("stacks/production.yaml", { key: () => readKey({}) });
 */
export async function loadStack(file: string, options: StackSecretOptions = {}): Promise<StackFile> {
  const text = await readYamlText(file, { code: "STACK_INVALID", hint });
  if (text === undefined) {
    throw new GalleyError("STACK_INVALID", `cannot read the stack file ${file}`, {
      hint: "name an existing stack file, e.g. stacks/production.yaml",
    });
  }
  const stack = parseYamlFile(file, text, stackSchema, "STACK_INVALID", hint);
  const at = lineOf(text);
  checkReferences(file, stack, at);
  await resolveStackSecrets(file, stack, options, at);
  return stack;
}

function lineOf(text: string): (path: (string | number)[]) => string {
  const { doc } = parseYamlForLines(text);
  return (path) => {
    const node = doc.getIn(path, true) as { range?: [number] } | undefined;
    const offset = node?.range?.[0];
    return offset === undefined ? "" : `:${text.slice(0, offset).split("\n").length}`;
  };
}

function checkReferences(file: string, stack: StackFile, at: (path: (string | number)[]) => string): void {
  for (const section of ["layers", "instances", "apps"] as const) {
    const seen = new Map<string, number>();
    stack[section].forEach((entry, index) => {
      const first = seen.get(entry.name);
      if (first !== undefined) {
        throw new GalleyError(
          "STACK_INVALID",
          `${file}${at([section, index, "name"])}: ${section}.${index}.name: "${entry.name}" is already the name of ${section}.${first}`,
          { hint: `give every entry of ${section} its own name` },
        );
      }
      seen.set(entry.name, index);
    });
  }
  const layers = new Set(stack.layers.map((layer) => layer.name));
  const shortNames = new Map<string, string>();
  for (const layer of stack.layers) {
    const short = layer.short_name ?? layer.name;
    const other = shortNames.get(short);
    if (other) {
      throw new GalleyError(
        "STACK_INVALID",
        `${file}: layers ${other} and ${layer.name} have the same short name "${short}"`,
        {
          hint: "give each layer its own short_name",
        },
      );
    }
    shortNames.set(short, layer.name);
  }
  for (const section of ["instances", "apps"] as const) {
    stack[section].forEach((entry, index) => {
      entry.layers.forEach((layer, li) => {
        if (!layers.has(layer)) {
          throw new GalleyError(
            "STACK_INVALID",
            `${file}${at([section, index, "layers", li])}: ${section}.${index}.layers: no layer named "${layer}"`,
            { hint: `the stack's layers are: ${[...layers].join(", ")}` },
          );
        }
      });
    });
  }
  stack.apps.forEach((app, index) => {
    const balancer = app.load_balancer?.layer;
    if (balancer !== undefined && !layers.has(balancer)) {
      throw new GalleyError(
        "STACK_INVALID",
        `${file}${at(["apps", index, "load_balancer", "layer"])}: apps.${index}.load_balancer.layer: no layer named "${balancer}"`,
        {
          hint: `name the layer that runs the app's load balancer; the stack's layers are: ${[...layers].join(", ")}`,
        },
      );
    }
  });
}
