import * as path from "node:path";
import { openStack, type StackContext } from "../../lifecycle/context.ts";
import { Lifecycle } from "../../lifecycle/lifecycle.ts";
import type { LifecycleOpener } from "./types.ts";

/**
 * What the automation does to a stack once it decided: the lifecycle's own operations. Tests of the
 * decisions pass their own; the server uses lifecycleActions.
 */
export interface AutomationActions {
  /** starts instances (host, setup, deploy at the pinned revision, online, configure everywhere) */
  start(stack: string, instances: string[]): Promise<void>;
  /** stops instances (shutdown, host stopped, configure on the rest) */
  stop(stack: string, instances: string[]): Promise<void>;
  /** a configure of the stack's online instances (one went away or came back) */
  configure(stack: string): Promise<void>;
  /** replaces an instance: stop (its host released), then start */
  replace(stack: string, instance: string): Promise<void>;
}

/** What only the server gives a stack: its agents (transport: agent) and their enrollment. */
export type ServerStackParts = Pick<StackContext, "agents" | "agentEnrollment">;

/** Opens `<kitchen>/stacks/<stack>.yaml` with its own handle on the kitchen's store, and the server's parts. */
export function kitchenLifecycles(
  kitchen: string,
  log: (line: string) => void,
  parts: ServerStackParts = {},
): LifecycleOpener {
  return async (stack) => {
    const context = await openStack(path.join(kitchen, "stacks", `${stack}.yaml`));
    try {
      const lifecycle = await Lifecycle.open({ ...context, ...parts }, { log });
      return { lifecycle, close: () => context.store.close() };
    } catch (error) {
      await context.store.close();
      throw error;
    }
  };
}

/** The automation's actions as lifecycle operations on stacks opened by `open`. */
export function lifecycleActions(open: LifecycleOpener): AutomationActions {
  const withLifecycle = async (stack: string, fn: (lifecycle: Lifecycle) => Promise<void>) => {
    const { lifecycle, close } = await open(stack);
    try {
      await fn(lifecycle);
      await lifecycle.idle();
    } finally {
      await close();
    }
  };
  return {
    start: (stack, instances) => withLifecycle(stack, (l) => l.start(instances)),
    stop: (stack, instances) => withLifecycle(stack, (l) => l.stop(instances)),
    configure: (stack) => withLifecycle(stack, (l) => l.requestConfigure()),
    replace: (stack, instance) =>
      withLifecycle(stack, async (l) => {
        await l.stop([instance]);
        await l.start([instance]);
      }),
  };
}

/**
 * Runs one stack's actions one after another (two lifecycle operations on one stack at once
 * would race on its instances' statuses); `busy` says whether one is queued or running, or one
 * failed less than `retryMs` ago (the schedulers leave the stack alone meanwhile rather than
 * repeat a failing action every tick).
 */
export class StackQueue {
  readonly #tails = new Map<string, Promise<void>>();
  readonly #pending = new Map<string, number>();
  readonly #failedAt = new Map<string, number>();
  readonly #log: (line: string) => void;
  readonly #clock: () => Date;
  readonly #retryMs: number;

  constructor(log: (line: string) => void, options: { clock?: () => Date; retryMs?: number } = {}) {
    this.#log = log;
    this.#clock = options.clock ?? (() => new Date());
    this.#retryMs = options.retryMs ?? 5 * 60_000;
  }

  /** Queues `work` after the stack's earlier actions; a failure is logged, never thrown. */
  run(stack: string, what: string, work: () => Promise<void>): Promise<void> {
    this.#pending.set(stack, (this.#pending.get(stack) ?? 0) + 1);
    const next = (this.#tails.get(stack) ?? Promise.resolve())
      .then(work)
      .catch((error: unknown) => {
        this.#failedAt.set(stack, this.#clock().getTime());
        this.#log(
          `automation: ${stack}: ${what} failed: ${(error as Error).message} (the stack is left alone for ${Math.round(this.#retryMs / 1000)} s)`,
        );
      })
      .finally(() => {
        const left = (this.#pending.get(stack) ?? 1) - 1;
        if (left === 0) {
          this.#pending.delete(stack);
          this.#tails.delete(stack);
        } else this.#pending.set(stack, left);
      });
    this.#tails.set(stack, next);
    return next;
  }

  busy(stack: string): boolean {
    const failed = this.#failedAt.get(stack);
    if (failed !== undefined && this.#clock().getTime() - failed < this.#retryMs) return true;
    return this.#pending.has(stack);
  }

  /** Resolves once every queued action ended. */
  async idle(): Promise<void> {
    while (this.#tails.size > 0) await Promise.all(this.#tails.values());
  }
}
