import { stringify } from "yaml";
import type { SecretOptions } from "../cookbooks/cookbook.ts";
import { type AttributeSet, formatExplanation } from "../cookbooks/precedence.ts";
import { compileRun } from "../cookbooks/solo.ts";
import { type Attributes, isPlainObject } from "../core/attributes.ts";
import { exitCodes, GalleyError } from "../core/errors.ts";
import { redacted } from "../core/report.ts";
import { LocalHost } from "../hosts/local.ts";
import { cookbooksDir, type RunListValues, runListOptions, secretOptions } from "./options.ts";
import { write, writeJson } from "./output.ts";

/** Gives the attribute layers of a run list, every level filled that the caller knows of. */
export type AttributesProvider = (
  runList: string[],
  options: { cookbooksDir: string; attrs: string[]; secrets?: SecretOptions },
) => Promise<AttributeSet>;

const options = {
  ...runListOptions,
  explain: {
    type: "string",
    description: "show every level that set this key (a.b.c; list items by index: a.list.0) and which won",
  },
} as const;

interface Values extends RunListValues {
  explain?: string;
}

/** `galley attrs` over the attribute layers `provider` gives: the merged attributes, or where one came from. */
export function makeAttrsCommand(provider: AttributesProvider) {
  return {
    summary: "print the merged attributes of a run list, or with --explain where a value came from",
    usage: "[RUNLIST…] [--cookbooks DIR] [--attrs FILE]… [--explain a.b.c] [--json]",
    options,
    async run(values: Values, positionals: string[]): Promise<number> {
      const set = await provider(positionals, {
        cookbooksDir: cookbooksDir(values),
        attrs: values.attrs ?? [],
        secrets: secretOptions(values),
      });
      const secrets = set.sensitiveValues();
      if (values.explain === undefined) {
        const attributes = scrub(set.redacted(), secrets);
        if (values.json) writeJson(attributes);
        else write(Object.keys(attributes).length ? stringify(attributes) : "{}\n");
        return exitCodes.ok;
      }
      const explanation = scrub(set.explain(values.explain), secrets);
      if (values.json) {
        writeJson(explanation);
        return exitCodes.ok;
      }
      write(formatExplanation(explanation));
      if (explanation.contributions.length === 0) {
        const near = nearestKeys(set.merged(), explanation.path);
        if (near) process.stdout.write(`hint: ${near}\n`);
      }
      return exitCodes.ok;
    },
  };
}

/**
 * The attribute layers of a run list on this machine: cookbook defaults, --attrs files, the
 * overrides its recipes set (the run list is compiled, nothing is applied) and the facts.
 */
export const cookbookAttributes: AttributesProvider = async (
  runList,
  { cookbooksDir, attrs, secrets = {} },
) => {
  if (runList.length === 0) {
    throw new GalleyError("USAGE", "galley attrs: the run list is empty", {
      hint: "name the run list whose attributes to show: galley attrs web, or galley attrs web::db",
    });
  }
  const { attributes } = await compileRun({
    runList,
    cookbooksDir,
    attributeFiles: attrs,
    host: new LocalHost(),
    secrets,
  });
  return attributes;
};

/** `galley attrs`: the merged attributes of a run list on this machine, and where each came from. */
export const attrsCommand = makeAttrsCommand(cookbookAttributes);

// a secret copied into a value that is not marked sensitive (by a recipe, say) is still hidden
function scrub<T>(value: T, secrets: string[]): T {
  if (secrets.length === 0) return value;
  const walk = (node: unknown): unknown => {
    if (typeof node === "string")
      return secrets.reduce((text, secret) => text.replaceAll(secret, redacted), node);
    if (Array.isArray(node)) return node.map(walk);
    if (isPlainObject(node)) return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, walk(v)]));
    return node;
  };
  return walk(value) as T;
}

// for a key that is not set: the keys that are, under its deepest ancestor that exists
function nearestKeys(merged: Attributes, keys: readonly string[]): string | undefined {
  let node: Attributes = merged;
  let depth = 0;
  for (const key of keys.slice(0, -1)) {
    const child = node[key];
    if (!isPlainObject(child)) break;
    node = child;
    depth += 1;
  }
  const known = Object.keys(node);
  if (known.length === 0) return undefined;
  const where = depth === 0 ? "at the top level" : `under ${keys.slice(0, depth).join(".")}`;
  return `keys ${where}: ${known.slice(0, 20).join(", ")}${known.length > 20 ? ", …" : ""}`;
}
