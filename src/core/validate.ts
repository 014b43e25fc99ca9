import type * as v from "valibot";
import type { PropertySchema, ResourceType } from "./resource.ts";

/** Turns schema issues into one message that names each property and what is wrong with it. */
export function formatIssues(issues: readonly v.BaseIssue<unknown>[], type?: ResourceType): string {
  const unknown = issues.filter(isUnknownKey).map((issue) => String(issue.input));
  const messages = issues
    .filter((issue) => !isUnknownKey(issue))
    .map((issue) => {
      const path = issue.path?.map((item) => String(item.key)).join(".");
      return `${path ? `property "${path}"` : "properties"}: ${issue.message}`;
    });
  if (unknown.length > 0) {
    const accepted = type ? ` (${type.type} accepts: ${acceptedProperties(type).join(", ")})` : "";
    messages.unshift(
      `unknown ${unknown.length > 1 ? "properties" : "property"} ${unknown.map((k) => `"${k}"`).join(", ")}${accepted}`,
    );
  }
  return messages.join("; ");
}

// a strict object reports each key it does not know as an issue about that key, expecting none
function isUnknownKey(issue: v.BaseIssue<unknown>): boolean {
  return issue.kind === "schema" && issue.type === "strict_object" && issue.expected === "never";
}

/** The property names a type accepts, from its schema. */
export function acceptedProperties(type: ResourceType): string[] {
  return Object.keys((type.schema as PropertySchema).entries);
}
