import type { ResourceType } from "../core/resource.ts";
import { directory } from "./directory.ts";
import { execute } from "./execute.ts";
import { file } from "./file.ts";
import { link } from "./link.ts";
import { pkg } from "./package.ts";
import { service } from "./service.ts";
import { template } from "./template.ts";

/** The built-in resource types, by name. Cookbooks add their own beside these. */
export const resourceTypes = {
  file,
  directory,
  template,
  link,
  execute,
  package: pkg,
  service,
} as const satisfies Record<string, ResourceType>;

export type ResourceTypeName = keyof typeof resourceTypes;
