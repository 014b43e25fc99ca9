import { GalleyError } from "../core/errors.ts";
import type { DeploymentRecord, Store } from "../store/store.ts";

// A/B deployments: revision B on the fewest instances that can carry the asked share, and
// load-balancer weights so that B gets that share of the requests. `galley ab promote` deploys B
// to the rest, `galley ab abort` returns B's instances to A; both put the weights back to equal.

/** The weight of every instance when no A/B splits the traffic (the store's default). */
export const equalWeight = 100;

/** HAProxy's largest weight. */
const maxWeight = 256;

/** How an A/B deployment splits: how many instances run B, and each side's per-instance weight. */
export interface AbSplit {
  /** instances that run B: the first `count` of the app's instances */
  count: number;
  weightA: number;
  weightB: number;
  /** B's share of requests these weights give, in percent */
  share: number;
}

/**
 * The split for `--ab PERCENT` over `total` instances: B on ceil(PERCENT × total / 100) of them (at
 * least 1, never all), and the whole weights (1..256) whose ratio comes closest to the share,
 * A's weight as near 100 as that allows.
 *
 * @example abSplit(10, 3) // { count: 1, weightA: 99, weightB: 22, share: 10 }
 */
export function abSplit(percent: number, total: number): AbSplit {
  if (total < 2) {
    throw new GalleyError(
      "ARGS_INVALID",
      `--ab ${percent}%: the app has ${total} instance, an A/B needs 2 or more`,
      {
        hint: "B runs on some instances and A on the others: start another instance of the app's layers",
      },
    );
  }
  if (!Number.isInteger(percent) || percent < 1 || percent > 99) {
    throw new GalleyError("USAGE", `--ab ${percent}%: B's share is a whole percentage from 1% to 99%`, {
      hint: "e.g. --ab 10%",
    });
  }
  const count = Math.min(total - 1, Math.max(1, Math.ceil((percent * total) / 100)));
  const rest = total - count;
  let best = { count, weightA: equalWeight, weightB: equalWeight, share: (100 * count) / total };
  let bestError = Number.POSITIVE_INFINITY;
  for (let weightA = 1; weightA <= maxWeight; weightA++) {
    for (let weightB = 1; weightB <= maxWeight; weightB++) {
      const share = (100 * count * weightB) / (count * weightB + rest * weightA);
      const error = Math.abs(share - percent);
      const better =
        error < bestError - 1e-9 ||
        (Math.abs(error - bestError) <= 1e-9 &&
          Math.abs(weightA - equalWeight) < Math.abs(best.weightA - equalWeight));
      if (better) {
        best = { count, weightA, weightB, share };
        bestError = error;
      }
    }
  }
  return { ...best, share: Math.round(best.share * 100) / 100 };
}

/**
 * The app's A/B deployment under way: the newest succeeded deployment of strategy "ab" that no
 * succeeded deployment came after (a promote or an abort ends it; a failed one does not).
 */
export async function activeAb(
  store: Store,
  stack: string,
  app: string,
): Promise<DeploymentRecord | undefined> {
  for (const d of await store.listDeployments(stack, { app, limit: 200 })) {
    if (d.status !== "succeeded") continue;
    return d.strategy === "ab" ? d : undefined;
  }
  return undefined;
}

/** The names of the instances an A/B deployment put B on, from its record. */
export function abInstances(record: DeploymentRecord): string[] {
  const names = (record.params as { instances?: unknown }).instances;
  return Array.isArray(names) ? names.filter((n): n is string => typeof n === "string") : [];
}

/** A deployment of `app` is refused while an A/B of it runs (unless it is that A/B's promote or abort). */
export async function refuseDuringAb(store: Store, stack: string, app: string, file: string): Promise<void> {
  const ab = await activeAb(store, stack, app);
  if (!ab) return;
  throw new GalleyError(
    "AB_ACTIVE",
    `A/B deployment #${ab.id} of ${app} (${ab.revision.slice(0, 12)} on ${abInstances(ab).join(", ")}) is under way: one deployment of ${app} at a time`,
    {
      hint: `end it first: galley ab promote ${app} --stack ${file} (B everywhere) or galley ab abort ${app} --stack ${file} (back to A)`,
    },
  );
}
