import type { z } from "zod";
import type { ResourceType } from "./resource.ts";

/** Turns schema issues into one message that names each property and what is wrong with it. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], type?: ResourceType): string {
  return issues
    .map((issue) => {
      if (issue.code === "unrecognized_keys") {
        const accepted = type ? ` (${type.type} accepts: ${acceptedProperties(type).join(", ")})` : "";
        return `unknown ${issue.keys.length > 1 ? "properties" : "property"} ${issue.keys.map((k) => `"${k}"`).join(", ")}${accepted}`;
      }
      const property = issue.path.length ? `property "${issue.path.join(".")}"` : "properties";
      return `${property}: ${issue.message}`;
    })
    .join("; ");
}

/** The property names a type accepts, from its schema. */
export function acceptedProperties(type: ResourceType): string[] {
  const shape = (type.schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}
