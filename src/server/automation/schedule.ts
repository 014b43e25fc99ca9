import { shouldRun, zonedHour } from "../../lifecycle/scaling.ts";
import type { Instance, StackFile } from "../../stacks/schema.ts";
import type { InstanceStatus } from "../../store/store.ts";
import type { AutomationActions, StackQueue } from "./actions.ts";
import { type AutomationContext, type Clock, storedStack } from "./types.ts";

/** One move of a time-based instance the schedule asks for, with why. */
export interface ScheduledMove {
  instance: string;
  action: "start" | "stop";
  reason: string;
}

// statuses the scheduler may start from, and stop from; the others belong to a running operation or the healer
const startable: readonly InstanceStatus[] = ["stopped", "terminated"];
const stoppable: readonly InstanceStatus[] = ["online", "setup_failed"];

/**
 * What the weekly schedules ask of a stack's time-based instances at `now`: start those whose slot
 * began and that are stopped, stop those whose slot ended and that run. 24/7 and load-based
 * instances are never moved here.
 *
 * @example scheduleMoves(stack, new Map([["report1", "stopped"]]), new Date()) // [{ instance: "report1", action: "start", … }]
 */
export function scheduleMoves(
  stack: Pick<StackFile, "instances">,
  statuses: ReadonlyMap<string, InstanceStatus>,
  now: Date,
): ScheduledMove[] {
  const moves: ScheduledMove[] = [];
  for (const instance of stack.instances) {
    if (instance.scaling.type !== "time") continue;
    const status = statuses.get(instance.name) ?? "stopped";
    const wanted = shouldRun(instance, now);
    if (wanted === "yes" && startable.includes(status))
      moves.push({
        instance: instance.name,
        action: "start",
        reason: `its slot began: ${slot(instance, now)}`,
      });
    if (wanted === "no" && stoppable.includes(status))
      moves.push({
        instance: instance.name,
        action: "stop",
        reason: `its slot ended: ${slot(instance, now)}`,
      });
  }
  return moves;
}

// "monday 09:00-10:00 Europe/Paris, schedule monday [9, 10]"
function slot(instance: Instance, now: Date): string {
  if (instance.scaling.type !== "time") return "";
  const zone = instance.scaling.timezone ?? "UTC";
  const { day, hour } = zonedHour(now, zone);
  const hours = (instance.scaling.schedule as Partial<Record<string, number[]>>)[day] ?? [];
  const h = (n: number) => `${String(n % 24).padStart(2, "0")}:00`;
  return `${day} ${h(hour)}-${h(hour + 1)} ${zone}, schedule ${day} [${hours.join(", ")}]`;
}

/**
 * The time-based scheduler: each tick, for every stack whose lease it holds (`scheduler:<stack>`),
 * records and runs the moves scheduleMoves asks for.
 */
export class Scheduler {
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

  /** One evaluation of every stack; resolves once the moves are queued (not done). */
  async tick(): Promise<ScheduledMove[]> {
    const { store, settings, id } = this.#ctx;
    const all: ScheduledMove[] = [];
    for (const stored of await store.listStacks()) {
      const stack = storedStack(stored.content);
      if (!stack?.instances.some((i) => i.scaling?.type === "time")) continue;
      // a stack whose last moves still run is looked at again next tick
      if (this.#queue.busy(stored.name)) continue;
      const now = this.#clock();
      if (!(await store.acquireLease(`scheduler:${stored.name}`, id, settings.schedulerMs * 3, now)))
        continue;
      const records = await store.listInstances(stored.name);
      const moves = scheduleMoves(stack, new Map(records.map((r) => [r.name, r.status])), now);
      if (moves.length === 0) continue;
      for (const move of moves) {
        await store.appendAudit({
          actor: "system:scheduler",
          action: `instance.${move.action}`,
          stack: stored.name,
          target: move.instance,
          outcome: "auto",
          reason: move.reason,
        });
        this.#ctx.log(`scheduler: ${stored.name}/${move.instance}: ${move.action}: ${move.reason}`);
      }
      const stop = moves.filter((m) => m.action === "stop").map((m) => m.instance);
      const start = moves.filter((m) => m.action === "start").map((m) => m.instance);
      if (stop.length > 0)
        void this.#queue.run(stored.name, `stop ${stop.join(", ")}`, () =>
          this.#actions.stop(stored.name, stop),
        );
      if (start.length > 0)
        void this.#queue.run(stored.name, `start ${start.join(", ")}`, () =>
          this.#actions.start(stored.name, start),
        );
      all.push(...moves);
    }
    return all;
  }
}
