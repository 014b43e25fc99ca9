import type { Layer, LoadThreshold, StackFile } from "../../stacks/schema.ts";
import type { InstanceStatus } from "../../store/store.ts";
import type { AutomationActions, StackQueue } from "./actions.ts";
import type { MetricSample as Sample } from "../../store/store.ts";
import { type AutomationContext, type Clock, decidedAt, storedStack } from "./types.ts";

const minute = 60_000;
const metrics = ["cpu", "memory", "load"] as const;
type Metric = (typeof metrics)[number];

/** A layer's last scaling action (from the audit log): the cooldown counts from it. */
export interface LastScaling {
  direction: "up" | "down";
  at: Date;
}

/** What the autoscaler decided for one layer. */
export type ScalingDecision =
  | {
      action: "start" | "stop";
      direction: "up" | "down";
      instances: string[];
      reason: string;
      averages: Averages;
    }
  | { action: "none"; reason: string };

/** Per metric, the layer's average in each minute of the wait, oldest first. */
export type Averages = Record<Metric, number[]>;

/**
 * Per-minute averages of the samples of `instances` in the `wait` minutes before `now`; undefined
 * when the layer was not measured for the whole wait: a minute without a sample, or no sample
 * within `reportMs` (the agents' metrics interval) of the wait's start.
 */
export function minuteAverages(
  samples: readonly Sample[],
  instances: ReadonlySet<string>,
  now: Date,
  waitMinutes: number,
  reportMs = minute,
): Averages | undefined {
  const start = now.getTime() - waitMinutes * minute;
  const sums = Array.from({ length: waitMinutes }, () => ({ n: 0, cpu: 0, memory: 0, load: 0 }));
  let earliest = Number.POSITIVE_INFINITY;
  for (const sample of samples) {
    if (!instances.has(sample.instance)) continue;
    const at = Date.parse(sample.at);
    if (at <= start || at > now.getTime()) continue;
    earliest = Math.min(earliest, at);
    const bucket = sums[Math.min(waitMinutes - 1, Math.floor((at - start) / minute))]!;
    bucket.n += 1;
    for (const m of metrics) bucket[m] += sample[m];
  }
  if (sums.some((b) => b.n === 0) || earliest > start + reportMs) return undefined;
  const averages = { cpu: [], memory: [], load: [] } as Averages;
  for (const b of sums) for (const m of metrics) averages[m].push(b[m] / b.n);
  return averages;
}

// the metrics a threshold names, with their limits
function limits(threshold: LoadThreshold): [Metric, number][] {
  return metrics.filter((m) => threshold[m] !== undefined).map((m) => [m, threshold[m]!]);
}

const unit = (m: Metric) => (m === "load" ? "" : "%");
const round = (n: number) => Math.round(n * 10) / 10;

/**
 * The load-based decision for one layer at `now` (OpsWorks' semantics): up when any metric of
 * `up` stayed above its value in every minute of `up.wait_minutes`, starting `up.instances` of the
 * stopped load instances; down when every metric of `down` stayed below its value for
 * `down.wait_minutes`, stopping `down.instances` online load instances (the last first; never a
 * 24/7 or time-based one). Nothing while the last action's `ignore_minutes` run.
 */
export function scalingDecision(input: {
  layer: Layer;
  stack: Pick<StackFile, "instances">;
  statuses: ReadonlyMap<string, InstanceStatus>;
  samples: readonly Sample[];
  last?: LastScaling | undefined;
  now: Date;
  /** the agents' metrics interval (default a minute) */
  reportMs?: number;
}): ScalingDecision {
  const { layer, stack, statuses, samples, last, now, reportMs } = input;
  const settings = layer.load_based;
  if (!settings) return { action: "none", reason: "no load_based settings" };
  if (last) {
    const ignore = settings[last.direction].ignore_minutes * minute;
    if (now.getTime() - last.at.getTime() < ignore)
      return { action: "none", reason: `cooldown: scaled ${last.direction} at ${last.at.toISOString()}` };
  }
  const members = stack.instances.filter((i) => i.layers.includes(layer.name));
  const online = new Set(members.filter((i) => statuses.get(i.name) === "online").map((i) => i.name));
  if (online.size === 0) return { action: "none", reason: "no online instance to measure" };
  const pool = members.filter((i) => i.scaling.type === "load");
  const names = [...online].join(", ");

  const up = minuteAverages(samples, online, now, settings.up.wait_minutes, reportMs);
  const above = up ? limits(settings.up).filter(([m, limit]) => up[m].every((a) => a > limit)) : [];
  if (up && above.length > 0) {
    const stopped = pool.filter((i) => ["stopped", "terminated"].includes(statuses.get(i.name) ?? "stopped"));
    const chosen = stopped.slice(0, settings.up.instances).map((i) => i.name);
    const why = above
      .map(([m, limit]) => `average ${m} ${round(Math.min(...up[m]))}${unit(m)} or more > ${limit}${unit(m)}`)
      .join(", ");
    if (chosen.length === 0)
      return { action: "none", reason: `${why}, but no stopped load instance is left` };
    return {
      action: "start",
      direction: "up",
      instances: chosen,
      averages: up,
      reason: `${why} for ${settings.up.wait_minutes} min over ${names}`,
    };
  }

  const down = minuteAverages(samples, online, now, settings.down.wait_minutes, reportMs);
  const below = down ? limits(settings.down).filter(([m, limit]) => down[m].every((a) => a < limit)) : [];
  if (down && below.length > 0 && below.length === limits(settings.down).length) {
    const running = pool.filter((i) => statuses.get(i.name) === "online").reverse();
    const chosen = running.slice(0, settings.down.instances).map((i) => i.name);
    if (chosen.length === 0)
      return { action: "none", reason: "below the down thresholds, no load instance runs" };
    const why = below
      .map(
        ([m, limit]) => `average ${m} ${round(Math.max(...down[m]))}${unit(m)} or less < ${limit}${unit(m)}`,
      )
      .join(", ");
    return {
      action: "stop",
      direction: "down",
      instances: chosen,
      averages: down,
      reason: `${why} for ${settings.down.wait_minutes} min over ${names}`,
    };
  }
  return { action: "none", reason: "within the thresholds" };
}

/**
 * The load-based autoscaler: each tick, for every stack whose lease it holds (`autoscaler:<stack>`),
 * decides per layer with `load_based` from the agents' metrics in the store and starts or stops
 * the layer's load instances. The cooldown counts from the layer's last action in the audit log,
 * so it holds across server restarts and servers.
 */
export class Autoscaler {
  readonly #ctx: AutomationContext;
  readonly #actions: AutomationActions;
  readonly #queue: StackQueue;
  readonly #clock: Clock;

  constructor(ctx: AutomationContext, actions: AutomationActions, queue: StackQueue, clock: Clock) {
    this.#ctx = ctx;
    this.#actions = actions;
    this.#queue = queue;
    this.#clock = clock;
  }

  /** One evaluation of every stack; resolves once the actions are queued (not done). */
  async tick(): Promise<{ stack: string; layer: string; decision: ScalingDecision }[]> {
    const { store, settings, id } = this.#ctx;
    const decisions: { stack: string; layer: string; decision: ScalingDecision }[] = [];
    for (const stored of await store.listStacks()) {
      const stack = storedStack(stored.content);
      const layers = stack?.layers.filter((l) => l.load_based) ?? [];
      if (!stack || layers.length === 0 || this.#queue.busy(stored.name)) continue;
      const now = this.#clock();
      if (!(await store.acquireLease(`autoscaler:${stored.name}`, id, settings.schedulerMs * 3, now)))
        continue;
      const longest = Math.max(
        ...layers.flatMap((l) => [l.load_based!.up.wait_minutes, l.load_based!.down.wait_minutes]),
      );
      const samples = await store.metricsSince(
        stored.name,
        new Date(now.getTime() - longest * minute).toISOString(),
      );
      const statuses = new Map((await store.listInstances(stored.name)).map((r) => [r.name, r.status]));
      const history = (await store.listAudit({ stack: stored.name, outcome: "auto", limit: 500 })).filter(
        (e) => e.actor === "system:autoscaler",
      );
      for (const layer of layers) {
        const newest = history.find(
          (e) => (e.detail as { layer?: string } | undefined)?.layer === layer.name,
        );
        const last = newest && {
          direction: (newest.detail as { direction: "up" | "down" }).direction,
          at: new Date(decidedAt(newest)),
        };
        const decision = scalingDecision({
          layer,
          stack,
          statuses,
          samples,
          last,
          now,
          reportMs: settings.metricsMs ?? minute,
        });
        decisions.push({ stack: stored.name, layer: layer.name, decision });
        if (decision.action === "none") continue;
        for (const instance of decision.instances) {
          // the instance counts as moving: a second layer of the stack does not pick it again this tick
          statuses.set(instance, decision.action === "start" ? "requested" : "stopping");
          await store.appendAudit({
            actor: "system:autoscaler",
            action: `instance.${decision.action}`,
            stack: stored.name,
            target: instance,
            outcome: "auto",
            reason: `layer ${layer.name}: ${decision.reason}`,
            detail: {
              layer: layer.name,
              direction: decision.direction,
              averages: decision.averages,
              at: now.toISOString(),
            },
          });
          this.#ctx.log(
            `autoscaler: ${stored.name}/${instance}: ${decision.action}: layer ${layer.name}: ${decision.reason}`,
          );
        }
        const { action, instances } = decision;
        void this.#queue.run(stored.name, `${action} ${instances.join(", ")}`, () =>
          action === "start"
            ? this.#actions.start(stored.name, instances)
            : this.#actions.stop(stored.name, instances),
        );
      }
    }
    return decisions;
  }
}
