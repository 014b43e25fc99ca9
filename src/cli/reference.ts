import { commonSchema } from "../core/common.ts";
import type { ResourceType } from "../core/resource.ts";
import { resourceTypes } from "../resources/index.ts";
import { describeProperties } from "./explain.ts";

/** The Markdown reference of every built-in resource type, generated from the schemas (docs/resources.md). */
export function resourcesReference(): string {
  const types = Object.values(resourceTypes as Readonly<Record<string, ResourceType>>);
  const lines = [
    "# Resource types",
    "",
    "Generated from the property schemas by `npm run docs`; `galley explain TYPE` prints the same.",
    "Every type also takes the [common properties](#common-properties).",
    "",
    ...types.map((t) => `- [\`${t.type}\`](#${t.type.replace(/_/g, "_")}): ${t.description}`),
    "",
  ];
  for (const type of types) {
    lines.push(`## ${type.type}`, "", type.description, "");
    lines.push(
      `Actions: ${type.actions.map((a, i) => `\`${a}\`${i === 0 ? " (default)" : ""}`).join(", ")}, \`nothing\`.`,
    );
    if (type.nameProperty) lines.push(`The resource name is the default of \`${type.nameProperty}\`.`);
    lines.push("", ...table(describeProperties(type.schema)), "");
  }
  lines.push(
    "## Common properties",
    "",
    "Handled by the engine for every type.",
    "",
    ...table(describeProperties(commonSchema)),
    "",
  );
  return lines.join("\n");
}

function table(properties: ReturnType<typeof describeProperties>): string[] {
  return [
    "| property | type | default | description |",
    "| --- | --- | --- | --- |",
    ...properties.map(
      (p) =>
        `| \`${p.name}\` | ${p.type.replaceAll("|", "\\|")} | ${p.default === undefined ? "" : `\`${JSON.stringify(p.default)}\``} | ${p.description.replaceAll("|", "\\|")} |`,
    ),
  ];
}
