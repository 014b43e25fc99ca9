import { countOf } from "./sizes.ts";
import type { Strategy } from "./strategy.ts";

/**
 * cutover: the release is prepared on every instance (fetched, unpacked, shared files linked,
 * built) before any switches; then every instance switches. A prepare failure anywhere switches
 * none; a failure during the switch reverts every instance already switched: all or nothing.
 */
export const cutover: Strategy = {
  summary:
    "prepare everywhere, then switch everywhere; any failure leaves or puts every instance back on its release",
  accepts: ["maxFail"],
  plan: (instances, params) => ({
    batches: instances.length > 0 ? [[...instances]] : [],
    prepareFirst: true,
    drain: false,
    maxFail: params.maxFail ? countOf(params.maxFail, instances.length) : 0,
    allOrNothing: true,
  }),
};
