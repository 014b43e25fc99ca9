import type { ResourceType } from "../core/resource.ts";
import { directory } from "./directory.ts";
import { cron } from "./cron.ts";
import { execute } from "./execute.ts";
import { file } from "./file.ts";
import { git } from "./git.ts";
import { group } from "./group.ts";
import { line } from "./line.ts";
import { link } from "./link.ts";
import { pkg } from "./package.ts";
import { remoteFile } from "./remote_file.ts";
import { service } from "./service.ts";
import { template } from "./template.ts";
import { user } from "./user.ts";

/** The built-in resource types, by name. Cookbooks add their own beside these. */
export const resourceTypes = {
  file,
  directory,
  template,
  link,
  execute,
  package: pkg,
  service,
  user,
  group,
  cron,
  line,
  git,
  remote_file: remoteFile,
} as const satisfies Record<string, ResourceType>;

export type ResourceTypeName = keyof typeof resourceTypes;
