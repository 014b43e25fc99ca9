import * as v from "valibot";
import { tempDir } from "../../resources/testing.ts";
import { type StackFile, stackSchema } from "../../stacks/schema.ts";
import { openSqliteStore, storeFile } from "../../store/sqlite.ts";
import type { InstanceStatus, Store } from "../../store/store.ts";
import type { AutomationActions } from "./actions.ts";
import type { AgentEvents, AutomationContext } from "./types.ts";

// Test support for the automation's decisions: a real SQLite store holding a stack, a clock the
// test moves, and actions that record what was decided and move the statuses as the lifecycle would.

/** A clock the test moves. */
export class FakeClock {
  #now: number;
  constructor(start: string) {
    this.#now = Date.parse(start);
  }
  now = (): Date => new Date(this.#now);
  advance(ms: number): void {
    this.#now += ms;
  }
}

/** One recorded action. */
export interface Recorded {
  action: "start" | "stop" | "configure" | "replace";
  stack: string;
  instances: string[];
}

/** Actions that record themselves and set the statuses the lifecycle would end with. */
export function recordingActions(store: Store): { actions: AutomationActions; done: Recorded[] } {
  const done: Recorded[] = [];
  const set = async (stack: string, names: string[], to: InstanceStatus, reason: string) => {
    for (const name of names) await store.setInstanceStatus(stack, name, to, reason);
  };
  return {
    done,
    actions: {
      async start(stack, instances) {
        done.push({ action: "start", stack, instances });
        await set(stack, instances, "online", "started (test)");
      },
      async stop(stack, instances) {
        done.push({ action: "stop", stack, instances });
        await set(stack, instances, "stopped", "stopped (test)");
      },
      async configure(stack) {
        done.push({ action: "configure", stack, instances: [] });
      },
      async replace(stack, instance) {
        done.push({ action: "replace", stack, instances: [instance] });
        await set(stack, [instance], "online", "replaced (test)");
      },
    },
  };
}

/** A store (real SQLite, in a temp kitchen) holding `stack` as applied, each instance with `statuses` (default stopped). */
export async function storeWith(
  input: unknown,
  statuses: Record<string, InstanceStatus> = {},
): Promise<{ store: Store; stack: StackFile; kitchen: string }> {
  const stack = v.parse(stackSchema, input);
  const kitchen = await tempDir("galley-automation-");
  const store = openSqliteStore(storeFile(kitchen));
  await store.saveStack(stack.name, stack);
  for (const instance of stack.instances) {
    await store.upsertInstance({
      stack: stack.name,
      name: instance.name,
      layers: instance.layers,
      provider: instance.provider.type,
    });
    const status = statuses[instance.name];
    if (status && status !== "stopped")
      await store.setInstanceStatus(stack.name, instance.name, status, "test");
  }
  return { store, stack, kitchen };
}

/** A context for the automation over `store` (no hub: tests call the healer themselves). */
export function contextFor(
  store: Store,
  kitchen: string,
  options: { id?: string; keepaliveMs?: number; schedulerMs?: number; log?: string[] } = {},
): AutomationContext {
  const agents: AgentEvents = { on: () => () => undefined };
  return {
    kitchen,
    store,
    settings: {
      keepaliveMs: options.keepaliveMs ?? 30_000,
      missedKeepalives: 3,
      schedulerMs: options.schedulerMs ?? 60_000,
    },
    agents,
    log: (line) => options.log?.push(line),
    id: options.id ?? "server-a",
  };
}
