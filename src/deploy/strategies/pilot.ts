import { countOf } from "./sizes.ts";
import { chunks, type Strategy } from "./strategy.ts";

/**
 * pilot: one instance first (drained, switched, health-gated, back in service); only when it
 * passes, the rest in batches (`--batch`, default half of the rest, never all instances out of
 * service at once). A broken revision touches exactly one instance and is rolled back there.
 */
export const pilot: Strategy = {
  summary: "one instance first, health-gated; then the rest in batches",
  accepts: ["batch", "maxUnavailable", "maxFail"],
  plan: (instances, params) => {
    const [first, ...rest] = instances;
    if (first === undefined)
      return { batches: [], prepareFirst: false, drain: true, maxFail: 0, allOrNothing: false };
    const size = Math.min(
      params.batch ? countOf(params.batch, rest.length) : Math.ceil(rest.length / 2),
      params.maxUnavailable ? countOf(params.maxUnavailable, instances.length) : Number.POSITIVE_INFINITY,
      Math.max(1, instances.length - 1),
    );
    return {
      batches: [[first], ...chunks(rest, size)],
      prepareFirst: false,
      drain: true,
      maxFail: params.maxFail ? countOf(params.maxFail, instances.length) : 0,
      allOrNothing: false,
    };
  },
};
