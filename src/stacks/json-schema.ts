import { toJsonSchema } from "@valibot/to-json-schema";
import { stackSchema } from "./schema.ts";

/**
 * The stack file's JSON Schema, for editors (`# yaml-language-server: $schema=…`): made from the
 * same valibot schema that validates stack files, so the two cannot disagree.
 */
export function stackJsonSchema(): Record<string, unknown> {
  const schema = toJsonSchema(stackSchema, {
    target: "draft-2020-12",
    errorMode: "ignore",
    typeMode: "input",
  }) as Record<string, unknown>;
  return {
    ...schema,
    title: "Galley stack file",
    description: "A deployment's whole configuration: layers, instances and apps (docs/stacks.md)",
  };
}
