/**
 * Galley's public API: what recipes, cookbooks and embedding programs import from "galley".
 */
export type { Attributes } from "./core/attributes.ts";
export type { Catalog, CatalogResource, Edge, Guard, Notification } from "./core/catalog.ts";
export { compile } from "./core/compile.ts";
export {
  type CompositeDefinition,
  type CompositeInstance,
  composite,
  type LowLevelDefinition,
  type Props,
  resourceType,
} from "./core/custom.ts";
export { converge, type ConvergeEvent, type ConvergeOptions } from "./core/converge.ts";
export { GalleyError, type ErrorCode, exitCodes } from "./core/errors.ts";
export { sensitive } from "./core/secrets.ts";
export type { ExecOptions, ExecResult, Facts, Host, Stat } from "./core/host.ts";
export type { Recipe, RecipeContext, ResourceRef } from "./core/recipe.ts";
export type { Report, ResourceReport } from "./core/report.ts";
export { type Change, defineResourceType, type ResourceType } from "./core/resource.ts";
export { compileRunList } from "./cookbooks/solo.ts";
export { LocalHost } from "./hosts/local.ts";
/** `r.stack`'s type (its module also types the slot core declares for it) */
export type { DeployingApp, ReleaseTarget, StackView } from "./stacks/state.ts";
/** an app's `release` section (docs/deploy.md), as r.stack.deploying[i].release.settings shows it */
export type { AppRelease, HealthCheck, Hook, LoadBalancer } from "./stacks/schema.ts";
export { resourceTypes } from "./resources/index.ts";
/** valibot, for the properties of a cookbook's resource types: `import { v } from "galley"` */
export * as v from "valibot";
