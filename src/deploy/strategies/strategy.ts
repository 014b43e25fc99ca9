import type { Size } from "./sizes.ts";

/** What the user asked of a strategy (`--batch`, `--max-unavailable`, `--max-fail`). */
export interface StrategyParams {
  batch?: Size | undefined;
  maxUnavailable?: Size | undefined;
  maxFail?: Size | undefined;
}

/** A strategy's answer for one deployment: which instances go together, and how. */
export interface RolloutPlan {
  /** instance names per batch, in order: a batch is drained, switched and checked together */
  batches: string[][];
  /** every instance is prepared before any switches (cutover) */
  prepareFirst: boolean;
  /** a batch leaves the load balancer while it switches (when the app has one) */
  drain: boolean;
  /** how many instances may fail over the whole deployment before it stops and rolls back */
  maxFail: number;
  /** a failure reverts every instance already switched, not only the failed ones (cutover) */
  allOrNothing: boolean;
}

/** One deployment strategy: a file in src/deploy/strategies/ and a line in its registry. */
export interface Strategy {
  /** one line for `galley deploy --help` and docs */
  summary: string;
  /** the flags this strategy reads; any other is a usage error */
  accepts: readonly (keyof StrategyParams)[];
  plan(instances: readonly string[], params: StrategyParams): RolloutPlan;
}

/** `items` cut into consecutive chunks of `size` (the last may be shorter). */
export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += Math.max(1, size)) out.push(items.slice(i, i + Math.max(1, size)));
  return out;
}
