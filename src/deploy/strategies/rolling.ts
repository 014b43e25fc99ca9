import { countOf } from "./sizes.ts";
import { chunks, type Strategy } from "./strategy.ts";

/**
 * rolling: batches of `--batch` (default 1), never more than `--max-unavailable` out of service
 * at once, stopping (and rolling back what it switched) once more than `--max-fail` instances
 * failed over the whole deployment; an unreachable instance counts as failed.
 */
export const rolling: Strategy = {
  summary: "batches of --batch, at most --max-unavailable out of service, at most --max-fail failures",
  accepts: ["batch", "maxUnavailable", "maxFail"],
  plan: (instances, params) => {
    const total = instances.length;
    const size = Math.min(
      params.batch ? countOf(params.batch, total) : 1,
      params.maxUnavailable ? countOf(params.maxUnavailable, total) : Number.POSITIVE_INFINITY,
    );
    return {
      batches: chunks(instances, Math.max(1, size)),
      prepareFirst: false,
      drain: true,
      maxFail: params.maxFail ? countOf(params.maxFail, total) : 0,
      allOrNothing: false,
    };
  },
};
