import * as path from "node:path";
import type { HostOutcome, HostPhase } from "../fleet/push.ts";
import type { EventSummary, LifecycleOptions } from "../lifecycle/lifecycle.ts";
import type {
  DeploymentRecord,
  DeploymentStep,
  EventKind,
  EventRecord,
  InstanceStatus,
  Store,
} from "../store/store.ts";
import type { StackContext } from "../lifecycle/context.ts";
import {
  runStackAction,
  type StackAction,
  type StackActionOptions,
  type StackActionResult,
} from "./actions.ts";
import { type FeedLine, FeedWriter } from "./feed-writer.ts";
import type { DeployRequest } from "./request.ts";

export { type FeedLine, FeedWriter, type FeedWriterOptions } from "./feed-writer.ts";

// Runners' progress in the feed (the web panel's live view, `--follow`): a batching writer per
// stack, and the runners' progress callbacks (lifecycle events, deployments) that write through it:
// host phases and log lines under the event's and the deployment's subjects. Never a diff or a
// property value; a feed that cannot be written never stops a run.

/** At most this many "converging" phases per host and second (the last one is always written). */
const convergingPerSecond = 2;

interface HostThrottle {
  last: number;
  pending?: { subjects: string[]; data: unknown; at: string } | undefined;
  timer?: NodeJS.Timeout | undefined;
}

/**
 * One run's progress in the feed: host phases (converging throttled per host), each host's changed
 * and failed resources when it ends, log lines, deployment steps. Entries go under the event's
 * subject (`event:ID`) and, while a deployment runs, under `deployment:ID` too.
 * `.lifecycle(options)`, `.deployment(request)` and `.stackAction(options)` compose with a runner's
 * options (its own callbacks still run first); `close()` once the run ended.
 */
export class RunFeed {
  readonly writer: FeedWriter;
  /** the deployment under way (set when its record exists) */
  #deployment: number | undefined;
  /** log lines of a deployment said before its record existed: written under it once it does */
  #early: FeedLine[] = [];
  /** events under way, for the subject of lifecycle lines that name none */
  readonly #running = new Set<number>();
  readonly #hosts = new Map<string, HostThrottle>();
  readonly #now: () => number;
  readonly #kitchen: string | undefined;

  constructor(writer: FeedWriter, options: { now?: () => number; kitchen?: string | undefined } = {}) {
    this.writer = writer;
    this.#now = options.now ?? Date.now;
    this.#kitchen = options.kitchen;
  }

  /** A host's phase in event `event` (0: unknown), under the event and, for a deployment's, the deployment. */
  phase(event: number, instance: string, phase: HostPhase, inDeployment: boolean): void {
    const subjects = [
      ...(event > 0 ? [`event:${event}`] : []),
      ...(inDeployment && this.#deployment !== undefined ? [`deployment:${this.#deployment}`] : []),
    ];
    if (subjects.length === 0) return;
    const key = `${event}\u0000${instance}`;
    const host = this.#hosts.get(key) ?? { last: Number.NEGATIVE_INFINITY };
    this.#hosts.set(key, host);
    const data = phaseData(instance, phase);
    const at = new Date(this.#now()).toISOString();
    if (phase.phase === "converging") {
      const now = this.#now();
      const gap = 1000 / convergingPerSecond;
      if (host.pending === undefined && now - host.last >= gap) {
        host.last = now;
        this.#write(subjects, "phase", data, at);
      } else {
        // the newest replaces the one waiting: it is written when the host's second allows
        host.pending = { subjects, data, at };
        host.timer ??= setTimeout(() => this.#release(host), Math.max(0, host.last + gap - now));
        host.timer.unref();
      }
      return;
    }
    this.#release(host);
    this.#write(subjects, "phase", data, at);
    if (phase.phase === "done") {
      this.#hosts.delete(key);
      for (const line of outcomeLines(instance, phase.outcome))
        this.#write(subjects, "log", { line: this.#relative(line), instance }, at);
    }
  }

  /** A log line: the deployment's (if one runs), else the one event under way's, else the stack's. */
  log(text: string, instance?: string, fromDeployment = false): void {
    const line = this.#relative(text);
    const data = instance === undefined ? { line } : { line, instance };
    if (fromDeployment && this.#deployment === undefined) {
      this.#early.push({ kind: "log", data, at: new Date(this.#now()).toISOString() });
      return;
    }
    const subject =
      this.#deployment !== undefined
        ? `deployment:${this.#deployment}`
        : this.#running.size === 1
          ? `event:${[...this.#running][0]}`
          : undefined;
    this.writer.append({ kind: "log", ...(subject === undefined ? {} : { subject }), data });
  }

  /** A deployment's record exists: what follows (and its early lines) goes under it. */
  deploymentCreated(id: number): void {
    this.#deployment = id;
    for (const line of this.#early.splice(0)) this.writer.append({ ...line, subject: `deployment:${id}` });
  }

  /** A deployment's step started or ended: a phase under the deployment. */
  step(step: DeploymentStep): void {
    this.writer.append({
      kind: "phase",
      subject: `deployment:${step.deploymentId}`,
      data: { instance: step.instance, phase: step.phase, status: step.status, batch: step.batch },
    });
  }

  /** An event started: lines that name no subject go under it while it is the only one. */
  eventStarted(id: number): void {
    this.#running.add(id);
  }

  /** An event ended. */
  eventEnded(id: number): void {
    this.#running.delete(id);
  }

  /** Writes the held phases and every entry; call once the run ended. */
  async close(): Promise<void> {
    for (const host of this.#hosts.values()) this.#release(host);
    this.#hosts.clear();
    for (const line of this.#early.splice(0)) this.writer.append(line);
    await this.writer.close();
  }

  /** The lifecycle's options with this feed's callbacks after `base`'s. */
  lifecycle<T extends LifecycleOptions>(base: T): T & LifecycleOptions {
    return {
      ...base,
      log: (line: string) => {
        base.log?.(line);
        this.log(line);
      },
      onPhase: (kind: EventKind, instance: string, phase: HostPhase, event: number) => {
        base.onPhase?.(kind, instance, phase, event);
        this.phase(event, instance, phase, false);
      },
      onStatus: (instance: string, status: InstanceStatus, reason: string) => {
        base.onStatus?.(instance, status, reason);
        this.log(`${instance}: ${status}: ${reason}`, instance);
      },
      onEventStarted: (event: EventRecord) => {
        this.eventStarted(event.id);
        base.onEventStarted?.(event);
      },
      onEvent: (summary: EventSummary) => {
        this.eventEnded(summary.event.id);
        base.onEvent?.(summary);
      },
    };
  }

  /** A deployment request's progress options with this feed's callbacks after `base`'s. */
  deployment<T extends Pick<DeployRequest, "log" | "onStep" | "onCreated" | "onPhase">>(
    base: T,
  ): T & Pick<DeployRequest, "log" | "onStep" | "onCreated" | "onPhase"> {
    return {
      ...base,
      log: (line: string) => {
        base.log?.(line);
        this.log(line, undefined, true);
      },
      onStep: (step: DeploymentStep) => {
        base.onStep?.(step);
        this.step(step);
      },
      onCreated: (record: DeploymentRecord) => {
        this.deploymentCreated(record.id);
        base.onCreated?.(record);
      },
      onPhase: (kind: EventKind, instance: string, phase: HostPhase, event: number) => {
        base.onPhase?.(kind, instance, phase, event);
        this.phase(event, instance, phase, true);
      },
    };
  }

  /** A stack action's options (`runStackAction`): the lifecycle's and its first deployments'. */
  stackAction(base: StackActionOptions): StackActionOptions {
    const deployments = base.deployments ?? {};
    return {
      ...this.lifecycle(base),
      deployments: {
        ...this.deployment(deployments),
        // one first deployment after another: the next one's early lines are its own
        onDeployment: (detail) => {
          this.#deployment = undefined;
          deployments.onDeployment?.(detail);
        },
      },
    };
  }

  // released: a held converging phase is written now
  #release(host: HostThrottle): void {
    clearTimeout(host.timer);
    host.timer = undefined;
    const pending = host.pending;
    if (pending === undefined) return;
    host.pending = undefined;
    host.last = this.#now();
    this.#write(pending.subjects, "phase", pending.data, pending.at);
  }

  // a server's lines name files relative to its kitchen: a panel's reader has no business with its path
  #relative(line: string): string {
    if (this.#kitchen === undefined) return line;
    return line.replaceAll(`${this.#kitchen}${path.sep}`, "").replaceAll(this.#kitchen, ".");
  }

  #write(subjects: string[], kind: "phase" | "log", data: unknown, at: string): void {
    for (const subject of subjects) this.writer.append({ kind, subject, data, at });
  }
}

/** Where a run's feed goes: the store, where a failed write is said, and the kitchen its lines name files relative to. */
export interface FeedTarget {
  /** the run's own store (it scrubs the secrets the run decrypted) */
  store: Pick<Store, "appendFeed">;
  log?: ((line: string) => void) | undefined;
  /** a server's kitchen: lines leave its path out (stacks/web.yaml, not /srv/kitchen/stacks/web.yaml) */
  kitchen?: string | undefined;
}

/**
 * A run's progress through a new FeedWriter for `stack`; close it (await) at the end.
 *
 * @example const feed = runFeed(ctx, "web"); try { await runStackAction(context, action, feed.stackAction(options)) } finally { await feed.close() }
 */
export function runFeed(target: FeedTarget, stack: string): RunFeed {
  return new RunFeed(new FeedWriter(target.store, stack, { log: target.log }), { kitchen: target.kitchen });
}

/**
 * Runs `fn` with a run's feed, closed (its entries written) once `fn` ends, however it ends.
 *
 * @example await withRunFeed(ctx, stack, (feed) => deploy(feed.deployment(request)))
 */
export async function withRunFeed<T>(
  target: FeedTarget,
  stack: string,
  fn: (feed: RunFeed) => Promise<T>,
): Promise<T> {
  const feed = runFeed(target, stack);
  try {
    return await fn(feed);
  } finally {
    await feed.close();
  }
}

function phaseData(instance: string, phase: HostPhase): Record<string, unknown> {
  switch (phase.phase) {
    case "converging":
      return {
        instance,
        phase: phase.phase,
        done: phase.done,
        total: phase.total,
        changed: phase.changed,
        failed: phase.failed,
      };
    case "connecting":
      return phase.attempt === undefined
        ? { instance, phase: phase.phase }
        : { instance, phase: phase.phase, attempt: phase.attempt };
    case "locked":
      return { instance, phase: phase.phase, holder: phase.holder };
    case "done": {
      const o = phase.outcome;
      return "report" in o
        ? {
            instance,
            phase: "done",
            status: o.status,
            changed: o.report.summary.changed,
            failed: o.report.summary.failed,
          }
        : { instance, phase: "done", status: o.status };
    }
    default:
      return { instance, phase: phase.phase };
  }
}

/** A host's end as lines for people: each changed or failed resource (no diff, no value), or why it did not run. */
export function outcomeLines(instance: string, outcome: HostOutcome): string[] {
  if (outcome.status === "skipped") return [`${instance}: skipped: ${firstLine(outcome.reason)}`];
  if (!("report" in outcome))
    return [`${instance}: ${outcome.status}: ${outcome.error.code}: ${firstLine(outcome.error.message)}`];
  const lines: string[] = [];
  for (const r of outcome.report.resources) {
    if (r.status === "changed")
      lines.push(`${instance}: ${r.id} updated${r.actions.length > 0 ? ` (${r.actions.join(", ")})` : ""}`);
    else if (r.status === "failed")
      lines.push(
        `${instance}: ${r.id} failed${r.ignored ? " (ignored)" : ""}${r.error ? `: ${firstLine(r.error.message)}` : ""}`,
      );
  }
  if (outcome.report.status === "interrupted") lines.push(`${instance}: interrupted`);
  return lines;
}

function firstLine(text: string): string {
  const line = text.split("\n")[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * `runStackAction` with its progress in the stack's feed too, written through the run's own store
 * (`context.store`: the one that scrubs the secrets the run decrypts; a server's own store does not
 * know them), failures said on `feed.log`: what the server's routes and the CLI's commands run.
 *
 * @example await runStackActionFed(ctx, context, { kind: "up" }, { log: ctx.log })
 */
export function runStackActionFed(
  feed: Omit<FeedTarget, "store">,
  context: StackContext,
  action: StackAction,
  options: StackActionOptions = {},
): Promise<StackActionResult> {
  return withRunFeed({ ...feed, store: context.store }, context.stack.name, (run) =>
    runStackAction(context, action, run.stackAction(options)),
  );
}
