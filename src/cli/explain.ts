import { toJsonSchema } from "@valibot/to-json-schema";
import type * as v from "valibot";
import { commonSchema } from "../core/common.ts";
import { exitCodes, GalleyError } from "../core/errors.ts";
import type { ResourceType } from "../core/resource.ts";
import { resourceTypes } from "../resources/index.ts";
import { paint, writeJson } from "./output.ts";

interface PropertyDoc {
  name: string;
  type: string;
  default?: unknown;
  description: string;
}

/** `galley explain [TYPE]`: a resource type's actions and properties, from its schema. */
export const explain = {
  summary: "describe a resource type: its actions and properties (from its schema)",
  usage: "[TYPE] [--json]",
  options: {
    json: {
      type: "boolean",
      default: false,
      description: "print JSON (with the JSON Schema of the properties)",
    },
    help: { type: "boolean", short: "h", description: "show this help" },
  } as const,
  async run(values: { json: boolean }, positionals: string[]): Promise<number> {
    const types = resourceTypes as Readonly<Record<string, ResourceType>>;
    const [name] = positionals;
    if (name === undefined) {
      const list = Object.values(types).map((t) => ({ type: t.type, description: t.description }));
      if (values.json) writeJson({ types: list });
      else for (const t of list) process.stdout.write(`${t.type.padEnd(12)} ${t.description}\n`);
      return exitCodes.ok;
    }
    const type = types[name];
    if (!type) {
      throw new GalleyError("RESOURCE_UNKNOWN_TYPE", `unknown resource type "${name}"`, {
        hint: `known types: ${Object.keys(types).join(", ")}`,
      });
    }
    const properties = describeProperties(type.schema);
    const common = describeProperties(commonSchema);
    if (values.json) {
      const doc = {
        type: type.type,
        description: type.description,
        actions: [...type.actions, "nothing"],
        defaultAction: type.actions[0],
        nameProperty: type.nameProperty,
        properties,
        commonProperties: common,
        schema: jsonSchema(type.schema),
      };
      writeJson(doc);
      return exitCodes.ok;
    }
    const out = [
      `${paint("bold", type.type)}: ${type.description}`,
      "",
      `actions: ${type.actions.map((a, i) => (i === 0 ? `${a} (default)` : a)).join(", ")}, nothing`,
      ...(type.nameProperty ? [`the resource name is the default of: ${type.nameProperty}`] : []),
      "",
      "properties:",
      ...formatProperties(properties),
      "",
      "common properties (every type):",
      ...formatProperties(common),
      "",
    ];
    process.stdout.write(out.join("\n"));
    return exitCodes.ok;
  },
};

function formatProperties(properties: PropertyDoc[]): string[] {
  return properties.map((p) => {
    const head = `  ${p.name.padEnd(14)} ${p.type}`;
    const fallback = p.default === undefined ? "" : ` (default: ${JSON.stringify(p.default)})`;
    return `${head}\n      ${p.description}${fallback}`;
  });
}

// what recipes write (before transforms); functions and handles have no JSON Schema and admit anything
function jsonSchema(schema: v.GenericSchema): Record<string, unknown> {
  const options = { target: "draft-2020-12", typeMode: "input", errorMode: "ignore" } as const;
  return toJsonSchema(schema, options) as Record<string, unknown>;
}

/** The properties of an object schema, described from its JSON Schema. */
export function describeProperties(schema: v.GenericSchema): PropertyDoc[] {
  const json = jsonSchema(schema) as { properties?: Record<string, Record<string, unknown>> };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    type: typeName(property),
    ...(property.default === undefined ? {} : { default: property.default }),
    description: typeof property.description === "string" ? property.description : "",
  }));
}

function typeName(property: Record<string, unknown>): string {
  const options = (property.anyOf ?? property.oneOf) as Record<string, unknown>[] | undefined;
  if (options) return [...new Set(options.map(typeName))].join(" | ");
  if (property.enum) return (property.enum as unknown[]).map((v) => JSON.stringify(v)).join(" | ");
  if (property.const !== undefined) return JSON.stringify(property.const);
  if (property.type === "array") return `${typeName((property.items as Record<string, unknown>) ?? {})}[]`;
  if (property.type === "object") return "object";
  if (typeof property.type === "string") return property.type;
  return "function | any";
}
