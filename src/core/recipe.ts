import type { Attributes } from "./attributes.ts";
import type { CommonInput } from "./common.ts";
import { ResourceRef } from "./common.ts";
import type { Facts } from "./host.ts";
import type { ResourceType } from "./resource.ts";
import type * as v from "valibot";

/** The properties a recipe passes for a type: the type's own (its name property optional) plus the common ones. */
export type DeclareProps<T> =
  T extends ResourceType<infer _P>
    ? T["schema"] extends v.GenericSchema<infer I>
      ? Partial<I> & CommonInput
      : never
    : never;

/**
 * The built-in resource types by name, as recipes see them. Core declares it empty so that it
 * imports nothing of resources/: src/resources/index.ts fills it in (declaration merging) from
 * its registry, so `r.file(…)` is typed by the registry's keys.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by src/resources/index.ts
export interface BuiltinResourceTypes {}

/**
 * What `r.stack` is. Core declares it empty so that it imports nothing of stacks/:
 * src/stacks/state.ts fills it in with its StackView (declaration merging).
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by src/stacks/state.ts
export interface RecipeStackView {}

type BuiltinMethods = {
  [K in keyof BuiltinResourceTypes]: (
    name: string,
    props?: DeclareProps<BuiltinResourceTypes[K]>,
  ) => ResourceRef;
};

/**
 * What a recipe receives: attributes, facts, include, and one method per resource type.
 *
 * @example
 * export default function (r: RecipeContext) {
 *   r.directory("/srv/app", { mode: 0o755 });
 * }
 */
export interface RecipeContext extends BuiltinMethods {
  /** the merged attributes */
  readonly attrs: Attributes;
  /** the host's facts */
  readonly facts: Facts;
  /**
   * the stack state seen from this instance (stack lifecycle runs only; reading it elsewhere is
   * a USAGE error): every layer, instance and app, and helpers such as `r.stack.online("app")`
   */
  readonly stack: RecipeStackView;
  /** whether this run belongs to a stack (r.stack is set) */
  readonly inStack: boolean;
  /** the cookbook of this recipe; undefined for a single recipe file */
  readonly cookbook: string | undefined;
  /** `cookbook::recipe` of this recipe, or its file */
  readonly recipe: string;
  /** sets attributes at the override level (above the run's --attrs, below facts); later reads of attrs see them */
  override(values: Attributes): void;
  /** runs another recipe once per run: `cookbook` (its default recipe) or `cookbook::recipe` */
  include(name: string): Promise<void>;
  /** declares a resource of any registered type, built-in or a cookbook's own */
  resource(type: string, name: string, props?: Record<string, unknown>): ResourceRef;
  /** a cookbook's own types, from its resources/ folder: `r.<cookbook>_<type>(name, props)` */
  // biome-ignore lint/suspicious/noExplicitAny: a cookbook's types are known only when its files load
  [customType: `${string}_${string}`]: (name: string, props?: any) => ResourceRef;
}

/** A recipe module's default export. */
export type Recipe = (r: RecipeContext) => void | Promise<void>;

export { ResourceRef };
