import type { Attributes } from "./attributes.ts";
import type { CommonInput } from "./common.ts";
import { ResourceRef } from "./common.ts";
import type { Facts } from "./host.ts";
import type { ResourceType } from "./resource.ts";
import type { StackView } from "../stacks/state.ts";
import type * as v from "valibot";
import type { resourceTypes } from "../resources/index.ts";

/** The properties a recipe passes for a type: the type's own (its name property optional) plus the common ones. */
export type DeclareProps<T> =
  T extends ResourceType<infer _P>
    ? T["schema"] extends v.GenericSchema<infer I>
      ? Partial<I> & CommonInput
      : never
    : never;

type BuiltinMethods = {
  [K in keyof typeof resourceTypes]: (
    name: string,
    props?: DeclareProps<(typeof resourceTypes)[K]>,
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
  readonly stack: StackView;
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
