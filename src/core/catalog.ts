import type { Facts, Host } from "./host.ts";

/** A guard function: runs at converge time on the machine running Galley, with the host to ask. */
export type GuardFunction = (context: { host: Host; facts: Facts }) => boolean | Promise<boolean>;

/** onlyIf/notIf: a shell command string, an argv list, or a function. */
export type Guard = { command: string | readonly string[] } | { fn: GuardFunction };

export interface Notification {
  /** the action to run on the target */
  action: string;
  /** the target's id, `type[name]` */
  target: string;
  timing: "immediate" | "delayed";
}

/** Where a resource was declared: shown in every error about it. */
export interface SourceLocation {
  file: string;
  line: number;
  /** `cookbook::recipe`, or the recipe file */
  recipe: string;
}

/** One resource in a compiled catalog: plain JSON except guard functions and template functions. */
export interface CatalogResource {
  id: string;
  type: string;
  name: string;
  actions: string[];
  /** the type's own properties, validated and compiled (templates rendered, sources read) */
  props: Record<string, unknown>;
  notifies: Notification[];
  requires: string[];
  before: string[];
  onlyIf?: Guard;
  notIf?: Guard;
  ignoreFailure: boolean;
  retries: number;
  /** seconds between retries */
  retryDelay: number;
  sensitive: boolean;
  source: SourceLocation;
  /** a composite's resources, declared by its body; the composite converges after them */
  children?: string[];
  /** the composite that declared this resource */
  parent?: string;
  /** guards of the enclosing composites: all must allow the resource to converge */
  parentGuards?: { of: string; onlyIf?: Guard; notIf?: Guard }[];
}

export interface Edge {
  /** runs first */
  from: string;
  /** runs after, and is skipped when `from` fails */
  to: string;
  reason: "requires" | "before" | "notifies" | "parent" | "owner" | "group" | "path" | "contains";
}

/** The compiled result of running the recipes for one host: resources in converge order, and edges. */
export interface Catalog {
  host: string;
  runList: string[];
  resources: CatalogResource[];
  edges: Edge[];
}

/** Splits `type[name]` into its parts; undefined when the text is not a resource id. */
export function parseResourceId(id: string): { type: string; name: string } | undefined {
  const match = /^([a-z][a-z0-9_]*)\[(.+)\]$/s.exec(id);
  return match ? { type: match[1]!, name: match[2]! } : undefined;
}

/** `file[/etc/motd]` */
export function resourceId(type: string, name: string): string {
  return `${type}[${name}]`;
}
