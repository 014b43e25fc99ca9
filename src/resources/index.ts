import { createRequire } from "node:module";
import type { ResourceType } from "../core/resource.ts";
import type { cron } from "./cron.ts";
import type { directory } from "./directory.ts";
import type { execute } from "./execute.ts";
import type { file } from "./file.ts";
import type { git } from "./git.ts";
import type { group } from "./group.ts";
import type { line } from "./line.ts";
import type { link } from "./link.ts";
import type { pkg } from "./package.ts";
import type { remoteFile } from "./remote_file.ts";
import type { service } from "./service.ts";
import type { template } from "./template.ts";
import type { user } from "./user.ts";

// A type's module (and what it needs: Eta, the service providers, account parsing…) loads the
// first time a recipe declares that type, synchronously; a run pays only for the types it uses.
const load = createRequire(import.meta.url);

function lazy<T>(module: string, name: string): () => T {
  let value: T | undefined;
  return () => {
    value ??= (load(module) as Record<string, T>)[name]!;
    return value;
  };
}

const loaders = {
  file: lazy<typeof file>("./file.ts", "file"),
  directory: lazy<typeof directory>("./directory.ts", "directory"),
  template: lazy<typeof template>("./template.ts", "template"),
  link: lazy<typeof link>("./link.ts", "link"),
  execute: lazy<typeof execute>("./execute.ts", "execute"),
  package: lazy<typeof pkg>("./package.ts", "pkg"),
  service: lazy<typeof service>("./service.ts", "service"),
  user: lazy<typeof user>("./user.ts", "user"),
  group: lazy<typeof group>("./group.ts", "group"),
  cron: lazy<typeof cron>("./cron.ts", "cron"),
  line: lazy<typeof line>("./line.ts", "line"),
  git: lazy<typeof git>("./git.ts", "git"),
  remote_file: lazy<typeof remoteFile>("./remote_file.ts", "remoteFile"),
};

/** The built-in resource types, by name. Cookbooks add their own beside these. */
export const resourceTypes = {
  get file() {
    return loaders.file();
  },
  get directory() {
    return loaders.directory();
  },
  get template() {
    return loaders.template();
  },
  get link() {
    return loaders.link();
  },
  get execute() {
    return loaders.execute();
  },
  get package() {
    return loaders.package();
  },
  get service() {
    return loaders.service();
  },
  get user() {
    return loaders.user();
  },
  get group() {
    return loaders.group();
  },
  get cron() {
    return loaders.cron();
  },
  get line() {
    return loaders.line();
  },
  get git() {
    return loaders.git();
  },
  get remote_file() {
    return loaders.remote_file();
  },
} as const satisfies Record<string, ResourceType>;

export type ResourceTypeName = keyof typeof resourceTypes;

type Builtins = typeof resourceTypes;

// Types `r.file(…)` and the other built-in methods of a recipe from this registry's keys.
declare module "../core/recipe.ts" {
  interface BuiltinResourceTypes extends Builtins {}
}
