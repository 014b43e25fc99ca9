import type { AgentLink } from "../../fleet/agent-protocol.ts";
import {
  type AutomationActions,
  kitchenLifecycles,
  lifecycleActions,
  type ServerStackParts,
  StackQueue,
} from "./actions.ts";
import { Autoscaler } from "./autoscale.ts";
import { Healer, type HealerPolicy, healerPolicy } from "./healer.ts";
import { Scheduler } from "./schedule.ts";
import type { AutomationContext, Clock, LifecycleOpener } from "./types.ts";

function isAgentLink<T extends object>(agents: T): agents is T & AgentLink {
  return "converge" in agents && "connect" in agents && "connected" in agents;
}

/** How startAutomation runs; every field has a default. */
export interface AutomationOptions {
  /** what the decisions do (default: lifecycle operations on the kitchen's stack files) */
  actions?: AutomationActions;
  /** how a stack's lifecycle is opened for the default actions (default: <kitchen>/stacks/<name>.yaml) */
  open?: LifecycleOpener;
  /** for the default opener: how agent instances are enrolled when a replacement starts them (the agents are ctx.agents) */
  agentEnrollment?: ServerStackParts["agentEnrollment"];
  clock?: Clock;
  healer?: Partial<HealerPolicy>;
}

/** The running automation of a server. */
export interface Automation {
  healer: Healer;
  scheduler: Scheduler;
  autoscaler: Autoscaler;
  /** one evaluation now (tests; the loop calls it every schedulerMs) */
  tick(): Promise<void>;
  /** resolves once every queued automatic action ended */
  idle(): Promise<void>;
  /** stops the loop and the hub listeners, waits for running actions, releases the leases */
  stop(): Promise<void>;
}

/**
 * Starts the server's automation: the healer on the hub's connection events, and every
 * `settings.schedulerMs` the time-based scheduler, the load-based autoscaler and the healer's
 * pending decisions. Each automatic action is an audit entry (outcome "auto") with its reason and a
 * log line.
 *
 * @example const automation = startAutomation(ctx); … await automation.stop();
 */
export function startAutomation(ctx: AutomationContext, options: AutomationOptions = {}): Automation {
  const clock = options.clock ?? (() => new Date());
  const log = (line: string) => ctx.log(line);
  // the server's hub is also the AgentLink its stacks' agent instances are reached through
  const link = isAgentLink(ctx.agents) ? ctx.agents : undefined;
  const parts: ServerStackParts = { agents: link, agentEnrollment: options.agentEnrollment };
  const actions =
    options.actions ?? lifecycleActions(options.open ?? kitchenLifecycles(ctx.kitchen, log, parts));
  const queue = new StackQueue(log, { clock, retryMs: Math.max(5 * ctx.settings.schedulerMs, 60_000) });
  const healer = new Healer(
    ctx,
    actions,
    queue,
    clock,
    healerPolicy(ctx.settings.keepaliveMs, options.healer),
  );
  const scheduler = new Scheduler(ctx, actions, queue, clock);
  const autoscaler = new Autoscaler(ctx, actions, queue, clock);
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let ticking: Promise<void> | undefined;

  const guard = (what: string, work: () => Promise<unknown>) =>
    work().then(
      () => undefined,
      (error: unknown) => log(`automation: ${what} failed: ${(error as Error).message}`),
    );
  const tick = async () => {
    // one tick at a time: a slow store makes ticks later, never overlapping
    ticking ??= (async () => {
      await guard("scheduler", () => scheduler.tick());
      await guard("autoscaler", () => autoscaler.tick());
      await guard("healer", () => healer.evaluate());
    })().finally(() => {
      ticking = undefined;
    });
    await ticking;
  };
  const later = (ms: number, work: () => Promise<void>) => {
    if (stopped) return;
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopped) void work();
    }, ms);
    timers.add(timer);
  };
  const loop = () =>
    later(ctx.settings.schedulerMs, async () => {
      await tick();
      loop();
    });

  const unsubscribe = [
    ctx.agents.on("lost", (target, reason) => {
      void guard(`healer (${target.stack}/${target.instance} lost)`, () => healer.lost(target, reason));
      // decide as soon as its window ends, not at the next tick
      later(healer.windowMs + 100, () => guard("healer", () => healer.evaluate()));
    }),
    ctx.agents.on("connected", (target) => {
      void guard(`healer (${target.stack}/${target.instance} back)`, () => healer.connected(target));
    }),
  ];
  loop();

  return {
    healer,
    scheduler,
    autoscaler,
    tick,
    idle: () => queue.idle(),
    async stop() {
      stopped = true;
      for (const off of unsubscribe) off();
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await ticking;
      await queue.idle();
      for (const stack of await ctx.store.listStacks().catch(() => [])) {
        await ctx.store.releaseLease(`scheduler:${stack.name}`, ctx.id).catch(() => undefined);
        await ctx.store.releaseLease(`autoscaler:${stack.name}`, ctx.id).catch(() => undefined);
      }
    },
  };
}
