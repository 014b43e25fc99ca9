import type { DeploymentRecord, DeploymentStep } from "../store/store.ts";
import type { StackContext } from "../lifecycle/context.ts";
import type { LifecycleOptions } from "../lifecycle/lifecycle.ts";
import type { StrategyParams } from "./strategies/index.ts";

// What a deployment is asked: the request `galley deploy`, `galley rollback`, a resume and an A/B
// give the rollout controller, and the names of the steps it records.

/** The phases of one instance in a deployment, in order, as progress and steps name them. */
export const deployPhases = [
  "drain",
  "prepare",
  "migrate",
  "switch",
  "health",
  "undrain",
  "rollback",
  "weight",
] as const;
export type DeployStepPhase = (typeof deployPhases)[number];

/** A file in the release, written when its migration command finished: what a resume asks. */
export const migratedMarker = ".galley-migrated";

/** What `galley deploy` asks. */
export interface DeployRequest {
  context: StackContext;
  app: string;
  /** a branch, tag or commit; default: the app's source revision in the stack file */
  revision?: string | undefined;
  strategy: string;
  params: StrategyParams;
  /** this deployment's custom JSON (--attrs), at the `deployment` attribute level */
  attributes?: { label: string; values: Record<string, unknown> } | undefined;
  /** a rollback: the deployment whose recorded parameters this one repeats */
  rollbackOf?: DeploymentRecord | undefined;
  /** not a rollback, but its release again (an A/B's promote): commit, release, attributes; no migration */
  reuse?: DeploymentRecord | undefined;
  /** an A/B deployment (strategy "ab"): B's share of requests, in percent */
  ab?: number | undefined;
  /** only these of the app's instances (an A/B's promote or abort) */
  only?: readonly string[] | undefined;
  /** the load-balancer weight of each instance once the deployment succeeded (an A/B's end: equal) */
  weights?: Record<string, number> | undefined;
  /** what the record says was asked, instead of the revision (an A/B's promote or abort) */
  requested?: string | undefined;
  /** this deployment promotes or aborts the A/B under way: not refused because of it */
  endsAb?: boolean | undefined;
  forks?: number | undefined;
  waitMs?: number | undefined;
  signal?: AbortSignal | undefined;
  /** the longest one batch may take (--deadline): then its runs stop and the deployment rolls back; default 600 s */
  deadlineMs?: number | undefined;
  /** a step of an instance started or ended */
  onStep?: ((step: DeploymentStep) => void) | undefined;
  /** a host's phase in one of the deployment's events (prepare, switch, hooks, migration, the load balancer's configure) */
  onPhase?: LifecycleOptions["onPhase"] | undefined;
  /** a line for people: the deployment's own news (batches, migration, rollback) */
  log?: ((line: string) => void) | undefined;
  /** who asked, as the record names them (default: user@host of this process) */
  user?: string | undefined;
  /** the deployment's record exists (or, for a resume, was found): a server answers with its id */
  onCreated?: ((record: DeploymentRecord) => void) | undefined;
}
