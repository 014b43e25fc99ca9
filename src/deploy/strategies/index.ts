import { GalleyError } from "../../core/errors.ts";
import { ab } from "./ab.ts";
import { cutover } from "./cutover.ts";
import { parallel } from "./parallel.ts";
import { pilot } from "./pilot.ts";
import { rolling } from "./rolling.ts";
import { sizeText } from "./sizes.ts";
import type { RolloutPlan, Strategy, StrategyParams } from "./strategy.ts";

export type { RolloutPlan, Strategy, StrategyParams };

/** The deployment strategies: adding one is adding a file and a line here. */
export const strategies = { cutover, pilot, parallel, rolling, ab } as const satisfies Record<
  string,
  Strategy
>;

/** A strategy's name. */
export type StrategyName = keyof typeof strategies;

/** The default strategy: rolling, one instance at a time. */
export const defaultStrategy: StrategyName = "rolling";

const flags: Record<keyof StrategyParams, string> = {
  batch: "--batch",
  maxUnavailable: "--max-unavailable",
  maxFail: "--max-fail",
};

/**
 * The plan of a deployment: the strategy by name (an unknown one is a usage error listing them),
 * checked against the flags it takes, applied to the instances.
 */
export function planRollout(name: string, instances: readonly string[], params: StrategyParams): RolloutPlan {
  if (!Object.hasOwn(strategies, name)) {
    throw new GalleyError("USAGE", `--strategy ${name}: no such strategy`, {
      hint: `strategies: ${Object.keys(strategies).join(", ")}`,
    });
  }
  const strategy: Strategy = strategies[name as StrategyName];
  for (const key of Object.keys(flags) as (keyof StrategyParams)[]) {
    const given = params[key];
    if (given !== undefined && !strategy.accepts.includes(key)) {
      throw new GalleyError("USAGE", `${flags[key]} ${sizeText(given)} does not go with --strategy ${name}`, {
        hint: `${name} takes ${strategy.accepts.map((k) => flags[k]).join(", ") || "no batch flags"}`,
      });
    }
  }
  return strategy.plan(instances, params);
}
