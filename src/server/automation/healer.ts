import type { AgentTarget } from "../../fleet/agent-protocol.ts";
import { instanceTransport } from "../../stacks/schema.ts";
import type { AutomationActions, StackQueue } from "./actions.ts";
import { type AutomationContext, type Clock, decidedAt, storedStack } from "./types.ts";

/** How the healer limits itself. */
export interface HealerPolicy {
  /** replacements per stack within `rateWindowMs` (default 3) */
  maxReplacements: number;
  /** default 10 minutes */
  rateWindowMs: number;
  /** more than this share of a stack's watched instances lost within one window is a partition (0.3) */
  partitionShare: number;
  /** added to one keepalive interval: the window in which losses count as "at once" (default one keepalive) */
  graceMs: number;
}

/** The default policy for a server whose keepalive interval is `keepaliveMs`. */
export function healerPolicy(keepaliveMs: number, overrides: Partial<HealerPolicy> = {}): HealerPolicy {
  return {
    maxReplacements: 3,
    rateWindowMs: 10 * 60_000,
    partitionShare: 0.3,
    graceMs: keepaliveMs,
    ...overrides,
  };
}

/**
 * Whether `lost` of `watched` instances silent at once is a partition rather than dead hosts: more
 * than `share` of them, and at least two (one silent agent is a dead host, even in a stack of one).
 */
export function isPartition(lost: number, watched: number, share: number): boolean {
  return lost >= 2 && watched > 0 && lost / watched > share;
}

/** What the healer decided for one lost instance once its window ended. */
export interface HealDecision {
  stack: string;
  instance: string;
  verdict: "replace" | "no-auto-healing" | "partition" | "rate-limited" | "held" | "cancelled";
  reason: string;
}

interface Lost {
  stack: string;
  instance: string;
  at: number;
  reason: string;
  /** a "held" decision was recorded already (a partition of others holds it) */
  held?: boolean;
}

const key = (t: AgentTarget) => `${t.stack}/${t.instance}`;

/**
 * Auto healing. On the hub's "lost", the instance becomes connection_lost and the rest of its stack
 * is configured; once one keepalive window (+ grace) passed without it coming back, it is
 * replaced (stop, then start) when one of its layers has `auto_healing` — unless more than 30% of
 * the stack's watched instances went silent in that window (a partition: nothing is healed until
 * they come back), or the stack had `maxReplacements` replacements within `rateWindowMs`.
 * Its decisions are pure over its state and the injected clock; `evaluate` runs them.
 */
export class Healer {
  readonly #ctx: AutomationContext;
  readonly #actions: AutomationActions;
  readonly #queue: StackQueue;
  readonly #clock: Clock;
  readonly policy: HealerPolicy;
  readonly #pending = new Map<string, Lost>();
  /** per stack, the instances lost in a partition and not back yet */
  readonly #partitioned = new Map<string, Set<string>>();
  readonly #configureQueued = new Set<string>();
  /** per stack, this server's replacements queued or running (they share the stack's healer lease) */
  readonly #replacing = new Map<string, number>();

  constructor(
    ctx: AutomationContext,
    actions: AutomationActions,
    queue: StackQueue,
    clock: Clock,
    policy: HealerPolicy,
  ) {
    this.#ctx = ctx;
    this.#actions = actions;
    this.#queue = queue;
    this.#clock = clock;
    this.policy = policy;
  }

  /** how long after a loss the healer decides: one keepalive interval plus the grace */
  get windowMs(): number {
    return this.#ctx.settings.keepaliveMs + this.policy.graceMs;
  }

  /** The hub lost an agent: connection_lost, configure the rest, and a decision once the window ends. */
  async lost(target: AgentTarget, reason: string): Promise<void> {
    const { store } = this.#ctx;
    const record = await store.getInstance(target.stack, target.instance);
    // only an instance that was online is lost (or one a run found unreachable already); a stopping
    // or starting one belongs to its operation
    if (record?.status !== "online" && record?.status !== "connection_lost") return;
    const why = `its agent went silent: ${reason}`;
    if (record.status === "online") {
      await store.setInstanceStatus(target.stack, target.instance, "connection_lost", why);
      await this.#audit("instance.connection_lost", target, why);
    }
    this.#ctx.log(`healer: ${key(target)}: connection_lost: ${why}`);
    this.#pending.set(key(target), { ...target, at: this.#clock().getTime(), reason });
    this.#configure(target.stack);
  }

  /** An agent (re)connected: a pending replacement is cancelled; a lost instance is online again. */
  async connected(target: AgentTarget): Promise<void> {
    const { store } = this.#ctx;
    const pending = this.#pending.get(key(target));
    if (pending) {
      this.#pending.delete(key(target));
      await this.#audit("heal.cancelled", target, "its agent came back before the replacement started");
    }
    const partition = this.#partitioned.get(target.stack);
    if (partition?.delete(target.instance) && partition.size === 0) {
      this.#partitioned.delete(target.stack);
      this.#ctx.log(`healer: ${target.stack}: the partition ended: every silent agent came back`);
    }
    const record = await store.getInstance(target.stack, target.instance);
    if (record?.status !== "connection_lost") return;
    await store.setInstanceStatus(target.stack, target.instance, "online", "its agent came back");
    await this.#audit("instance.online", target, "its agent came back");
    this.#configure(target.stack);
  }

  /** Decides for every loss whose window ended, and queues the replacements. */
  async evaluate(): Promise<HealDecision[]> {
    const now = this.#clock().getTime();
    const decisions: HealDecision[] = [];
    for (const lost of [...this.#pending.values()].sort((a, b) => a.at - b.at)) {
      if (now < lost.at + this.windowMs || !this.#pending.has(key(lost))) continue;
      const decision = await this.#decide(lost, now);
      if (decision) decisions.push(decision);
    }
    return decisions;
  }

  /** Losses waiting for a decision, and those a partition holds (for status pages and tests). */
  waiting(): { pending: string[]; partitioned: string[] } {
    return {
      pending: [...this.#pending.keys()],
      partitioned: [...this.#partitioned].flatMap(([stack, set]) => [...set].map((i) => `${stack}/${i}`)),
    };
  }

  async #decide(lost: Lost, now: number): Promise<HealDecision | undefined> {
    const { store } = this.#ctx;
    const stored = await store.listStacks();
    const stack = storedStack(stored.find((s) => s.name === lost.stack)?.content);
    const instance = stack?.instances.find((i) => i.name === lost.instance);
    if (!stack || !instance) {
      this.#pending.delete(key(lost));
      return undefined;
    }
    // handled elsewhere meanwhile: back through another server, or stopped by hand
    const record = await store.getInstance(lost.stack, lost.instance);
    const seen = (await store.getAgent(lost.stack, lost.instance))?.lastSeenAt;
    if (record?.status !== "connection_lost" || (seen !== undefined && Date.parse(seen) > lost.at)) {
      this.#pending.delete(key(lost));
      const reason = `no longer lost (${record?.status ?? "gone"}${seen ? `, its agent last seen ${seen}` : ""})`;
      await this.#audit("heal.cancelled", lost, reason);
      if (record?.status === "connection_lost") {
        await store.setInstanceStatus(
          lost.stack,
          lost.instance,
          "online",
          "its agent came back (another server)",
        );
        this.#configure(lost.stack);
      }
      return { stack: lost.stack, instance: lost.instance, verdict: "cancelled", reason };
    }
    const held = this.#partitioned.get(lost.stack);
    if (held && held.size > 0) {
      // a partition of others holds this one until they come back
      if (lost.held) return undefined;
      lost.held = true;
      const reason = `a partition holds healing in stack ${lost.stack}: ${[...held].join(", ")} still silent; healed once they come back`;
      await this.#audit("heal.skipped", lost, reason);
      return { stack: lost.stack, instance: lost.instance, verdict: "held", reason };
    }
    // the losses of this stack within one window of this one, and the instances the hub watches
    const together = [...this.#pending.values()].filter(
      (l) => l.stack === lost.stack && Math.abs(l.at - lost.at) <= this.windowMs,
    );
    const records = await store.listInstances(lost.stack);
    const up = records
      .filter((r) => r.status === "online" || r.status === "connection_lost")
      .map((r) => r.name);
    const byAgent = up.filter((name) => {
      const declared = stack.instances.find((i) => i.name === name);
      return declared !== undefined && instanceTransport(stack, declared) === "agent";
    });
    const watched = byAgent.length >= together.length ? byAgent.length : up.length;
    if (isPartition(together.length, watched, this.policy.partitionShare)) {
      const names = together.map((l) => l.instance);
      const share = Math.round((together.length / watched) * 100);
      const reason = `partition: ${together.length} of ${watched} agents (${share}%) went silent within ${Math.round(this.windowMs / 1000)} s (${names.join(", ")}): more than ${this.policy.partitionShare * 100}%, so nothing is healed until they come back`;
      this.#partitioned.set(lost.stack, new Set(names));
      for (const l of together) {
        this.#pending.delete(key(l));
        await this.#audit("heal.skipped", l, reason);
      }
      this.#ctx.log(`healer: ${lost.stack}: ${reason}`);
      return { stack: lost.stack, instance: lost.instance, verdict: "partition", reason };
    }
    this.#pending.delete(key(lost));
    const healing = stack.layers.filter((l) => instance.layers.includes(l.name) && l.auto_healing);
    if (healing.length === 0) {
      const reason = "none of its layers has auto_healing: left connection_lost";
      this.#ctx.log(`healer: ${key(lost)}: ${reason}`);
      return { stack: lost.stack, instance: lost.instance, verdict: "no-auto-healing", reason };
    }
    const since = now - this.policy.rateWindowMs;
    const recent = (await store.listAudit({ stack: lost.stack, outcome: "auto", limit: 500 })).filter(
      (e) => e.actor === "system:healer" && e.action === "heal.replace" && decidedAt(e) > since,
    );
    if (recent.length >= this.policy.maxReplacements) {
      const reason = `rate limit: ${recent.length} replacements in stack ${lost.stack} within ${this.policy.rateWindowMs / 60_000} min (at most ${this.policy.maxReplacements}); left connection_lost`;
      await this.#audit("heal.skipped", lost, reason);
      this.#ctx.log(`healer: ${key(lost)}: ${reason}`);
      return { stack: lost.stack, instance: lost.instance, verdict: "rate-limited", reason };
    }
    // one server replaces in a stack at a time (another server's healer may see other losses)
    const lease = `healer:${lost.stack}`;
    if (!(await store.acquireLease(lease, this.#ctx.id, 15 * 60_000, new Date(now)))) {
      this.#pending.set(key(lost), lost);
      this.#ctx.log(
        `healer: ${key(lost)}: another server heals stack ${lost.stack} now: tried again next tick`,
      );
      return undefined;
    }
    const reason = `its agent went silent (${lost.reason}) and did not come back within ${Math.round(this.windowMs / 1000)} s; layer ${healing.map((l) => l.name).join(", ")} has auto_healing`;
    await this.#audit("heal.replace", lost, reason);
    this.#ctx.log(`healer: ${key(lost)}: replacing: ${reason}`);
    // the lease is released once this server's last queued replacement in the stack ended
    this.#replacing.set(lost.stack, (this.#replacing.get(lost.stack) ?? 0) + 1);
    void this.#queue.run(lost.stack, `replace ${lost.instance}`, async () => {
      try {
        await this.#actions.replace(lost.stack, lost.instance);
      } finally {
        const left = (this.#replacing.get(lost.stack) ?? 1) - 1;
        if (left > 0) this.#replacing.set(lost.stack, left);
        else {
          this.#replacing.delete(lost.stack);
          await store.releaseLease(lease, this.#ctx.id);
        }
      }
    });
    return { stack: lost.stack, instance: lost.instance, verdict: "replace", reason };
  }

  // one configure waiting per stack: losses at once (a partition) configure the rest once, not once each
  #configure(stack: string): void {
    if (this.#configureQueued.has(stack)) return;
    this.#configureQueued.add(stack);
    void this.#queue.run(stack, "configure", () => {
      this.#configureQueued.delete(stack);
      return this.#actions.configure(stack);
    });
  }

  async #audit(action: string, target: AgentTarget, reason: string): Promise<void> {
    await this.#ctx.store.appendAudit({
      actor: "system:healer",
      action,
      stack: target.stack,
      target: target.instance,
      outcome: "auto",
      reason,
      detail: { at: this.#clock().toISOString() },
    });
  }
}
