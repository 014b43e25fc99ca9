import * as v from "valibot";
import type { Host } from "./host.ts";
import type { RecipeContext } from "./recipe.ts";
import type { ApplyContext, AutoRequire, Change, ResourceType } from "./resource.ts";

/** The validated properties of a definition with `properties: E`. */
export type Props<E extends v.ObjectEntries> = v.InferOutput<v.StrictObjectSchema<E, undefined>>;

/** What a composite's body is told about the resource being declared. */
export interface CompositeInstance<P> {
  /** the resource name, as in `r.web_site("main", …)` */
  name: string;
  /** the action being declared: the first of the type's actions unless the recipe chose one */
  action: string;
  /** the validated properties, defaults filled in */
  props: P;
}

/** A composite type as a cookbook writes it in `resources/<type>.ts`. */
export interface CompositeDefinition<E extends v.ObjectEntries> {
  description: string;
  /** the properties, as valibot schemas (`v` is exported by "galley") */
  properties: E;
  /** the first is the default */
  actions: readonly string[];
  /** declares the resources the composite stands for, with `r` scoped to the type's cookbook */
  body(r: RecipeContext, resource: CompositeInstance<Props<E>>): void | Promise<void>;
}

/** A low-level type as a cookbook writes it: the same read, diff and apply as the built-in types. */
export interface LowLevelDefinition<E extends v.ObjectEntries, S> {
  description: string;
  properties: E;
  actions: readonly string[];
  /** the property that takes the resource name when it is not given */
  nameProperty?: keyof E & string;
  /** actions that act every time they run */
  imperative?: readonly string[];
  /** properties never shown in logs, reports or diffs */
  sensitiveProperties?: readonly (keyof E & string)[];
  /** a change may alter state outside the resource's own key */
  broadEffects?: boolean;
  /** what makes two resources of this type the same thing on the host; default: the name property */
  key?(props: Props<E>): string;
  autoRequires?(props: Props<E>): AutoRequire[];
  read(host: Host, props: Props<E>): Promise<S | undefined>;
  diff(current: S | undefined, desired: Props<E>, action: string): Change[];
  apply(
    host: Host,
    desired: Props<E>,
    action: string,
    current: S | undefined,
    context: ApplyContext,
  ): Promise<void>;
}

const definitionKind = Symbol("galley.definition");

/** A cookbook's type definition, before the loader names it `<cookbook>_<file>`. */
export type CustomDefinition =
  | { readonly [definitionKind]: "composite"; readonly definition: CompositeDefinition<v.ObjectEntries> }
  | {
      readonly [definitionKind]: "resource";
      readonly definition: LowLevelDefinition<v.ObjectEntries, unknown>;
    };

/**
 * Declares a composite resource type: typed properties and actions, and a body that declares
 * other resources. The default export of a cookbook's `resources/<type>.ts`.
 *
 * @example
 * export default composite({
 *   description: "an nginx site", actions: ["create", "delete"],
 *   properties: { port: v.optional(v.number(), 80) },
 *   body(r, { name, props, action }) { r.template(`/etc/nginx/sites-enabled/${name}`, { … }); },
 * });
 */
export function composite<E extends v.ObjectEntries>(definition: CompositeDefinition<E>): CustomDefinition {
  return { [definitionKind]: "composite", definition: definition as never };
}

/**
 * Declares a low-level resource type with its own read, diff and apply (the interface of the
 * built-in types). The default export of a cookbook's `resources/<type>.ts`.
 */
export function resourceType<E extends v.ObjectEntries, S>(
  definition: LowLevelDefinition<E, S>,
): CustomDefinition {
  return { [definitionKind]: "resource", definition: definition as never };
}

/** Whether a module's default export is a definition made by composite() or resourceType(). */
export function isCustomDefinition(value: unknown): value is CustomDefinition {
  return typeof value === "object" && value !== null && definitionKind in value;
}

/** A composite type as the engine holds it: a ResourceType whose instances expand at compile time. */
export interface CompositeType extends ResourceType {
  composite: CompositeDefinition<v.ObjectEntries>;
  /** the cookbook that defines it */
  cookbook: string;
  /** its resources/<type>.ts */
  file: string;
}

/** Turns a cookbook's definition into a registered type named `type`. */
export function registerDefinition(
  type: string,
  cookbook: string,
  file: string,
  custom: CustomDefinition,
): ResourceType & { cookbook: string; file: string } {
  const definition = custom.definition;
  const schema = v.strictObject(definition.properties);
  if (custom[definitionKind] === "composite") {
    const composite = custom.definition as CompositeDefinition<v.ObjectEntries>;
    const type_: CompositeType = {
      type,
      description: composite.description,
      actions: composite.actions,
      schema,
      composite,
      cookbook,
      file,
      // a composite holds nothing itself: its resources are keyed, read and applied on their own
      key: () => "",
      sharedKeys: true,
      read: async () => undefined,
      diff: () => [],
      apply: async () => {},
    };
    return type_;
  }
  const low = custom.definition as LowLevelDefinition<v.ObjectEntries, unknown>;
  const nameProperty = low.nameProperty;
  return {
    type,
    description: low.description,
    actions: low.actions,
    schema,
    cookbook,
    file,
    ...(nameProperty ? { nameProperty } : {}),
    ...(low.imperative ? { imperative: low.imperative } : {}),
    ...(low.sensitiveProperties ? { sensitiveProperties: low.sensitiveProperties } : {}),
    ...(low.broadEffects ? { broadEffects: true } : {}),
    ...(low.autoRequires ? { autoRequires: low.autoRequires } : {}),
    key: (props: Record<string, unknown>) =>
      low.key ? low.key(props) : nameProperty ? String(props[nameProperty]) : JSON.stringify(props),
    read: (host: Host, props: Record<string, unknown>) => low.read(host, props),
    diff: (current: unknown, desired: Record<string, unknown>, action: string) =>
      low.diff(current, desired, action),
    apply: (
      host: Host,
      desired: Record<string, unknown>,
      action: string,
      current: unknown,
      context: ApplyContext,
    ) => low.apply(host, desired, action, current, context),
  };
}

/** Whether a registered type is a composite. */
export function isComposite(type: ResourceType): type is CompositeType {
  return "composite" in type;
}
