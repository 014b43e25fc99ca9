import { countOf } from "./sizes.ts";
import type { Strategy } from "./strategy.ts";

/**
 * parallel (blue/green): half of the instances leave the load balancer, are deployed and
 * health-gated, and return; then the other half. Traffic never reaches an instance mid-switch,
 * and half of the fleet serves at every moment.
 */
export const parallel: Strategy = {
  summary:
    "half of the instances out of the load balancer, deployed and checked, back in; then the other half",
  accepts: ["maxFail"],
  plan: (instances, params) => {
    const half = Math.ceil(instances.length / 2);
    const batches = [instances.slice(0, half), instances.slice(half)].filter((b) => b.length > 0);
    return {
      batches,
      prepareFirst: false,
      drain: true,
      maxFail: params.maxFail ? countOf(params.maxFail, instances.length) : 0,
      allOrNothing: false,
    };
  },
};
