import type { Strategy } from "./strategy.ts";

/**
 * ab: the instances an A/B deployment puts revision B on (the controller picks them from
 * `--ab N%`), one at a time like pilot's first: drained, switched, health-gated, back in; then the
 * load balancer's weights give B its share. Any failure rolls B back there.
 */
export const ab: Strategy = {
  summary: "revision B on the fewest instances that carry --ab N% of requests, then load-balancer weights",
  accepts: [],
  plan: (instances) => ({
    batches: instances.map((name) => [name]),
    prepareFirst: false,
    drain: true,
    maxFail: 0,
    allOrNothing: false,
  }),
};
