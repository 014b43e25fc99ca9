import type { Catalog, CatalogResource, Guard } from "./catalog.ts";
import { errorMessage, GalleyError, isGalleyError } from "./errors.ts";
import type { Host } from "./host.ts";
import { limit } from "./limit.ts";
import { PendingStore } from "./pending.ts";
import { scrubSecrets } from "./secrets.ts";
import type { Change, ResourceType } from "./resource.ts";
import {
  type PendingNotification,
  type Report,
  type ResourceReport,
  redactChanges,
  scrub,
  secretsOf,
  summarize,
} from "./report.ts";

export interface ConvergeOptions {
  mode: "apply" | "plan";
  /** the host's state dir: pending notifications, backups */
  stateDir: string;
  types: Readonly<Record<string, ResourceType>>;
  /** how many reads may run at once while prefetching */
  concurrency?: number;
  onEvent?: (event: ConvergeEvent) => void;
  /** aborted: the run stops before the next resource, delivers no more notifications and says `interrupted` */
  signal?: AbortSignal | undefined;
}

export type ConvergeEvent =
  | { kind: "start"; host: string; total: number }
  | { kind: "resource"; host: string; index: number; total: number; report: ResourceReport };

/**
 * Brings a host to its catalog: reads (prefetched concurrently: they are side-effect free),
 * diffs, applies what differs, in order. A failed resource skips only its dependents. Delayed
 * notifications fire once at the end; those that cannot be delivered are kept for the next run.
 * In plan mode nothing is applied and no notification runs: the report says what would change.
 */
export async function converge(catalog: Catalog, host: Host, options: ConvergeOptions): Promise<Report> {
  return new Run(catalog, host, options).execute();
}

class Run {
  readonly catalog: Catalog;
  readonly host: Host;
  readonly options: ConvergeOptions;
  readonly plan: boolean;
  readonly byId: Map<string, CatalogResource>;
  readonly reports = new Map<string, ResourceReport>();
  readonly predecessors = new Map<string, string[]>();
  readonly reads = new Map<string, Promise<unknown>>();
  readonly changed = new Set<string>();
  /** directories this run created where nothing was: the path of each */
  readonly createdDirectories = new Map<string, string>();
  /** resources that failed or were skipped because of a failure: their dependents are skipped */
  readonly blocked = new Set<string>();
  readonly delayed: PendingNotification[] = [];
  readonly store: PendingStore;
  readonly readLimit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly position = new Map<string, number>();
  kept: PendingNotification[] = [];
  fromPreviousRun: PendingNotification[] = [];
  cursor = 0;

  constructor(catalog: Catalog, host: Host, options: ConvergeOptions) {
    this.catalog = catalog;
    this.host = host;
    this.options = options;
    this.plan = options.mode === "plan";
    this.byId = new Map(catalog.resources.map((r) => [r.id, r]));
    this.store = new PendingStore(host, options.stateDir);
    this.readLimit = limit(options.concurrency ?? 16);
    catalog.resources.forEach((resource, i) => {
      this.position.set(resource.id, i);
      this.reports.set(resource.id, { id: resource.id, status: "unchanged", actions: [], durationMs: 0 });
    });
    for (const edge of catalog.edges) {
      const list = this.predecessors.get(edge.to);
      if (list) list.push(edge.from);
      else this.predecessors.set(edge.to, [edge.from]);
    }
  }

  async execute(): Promise<Report> {
    const started = performance.now();
    const startedAt = new Date().toISOString();
    const total = this.catalog.resources.length;
    this.options.onEvent?.({ kind: "start", host: this.host.name, total });
    await this.loadPending();
    this.prefetch(0);
    for (let index = 0; index < total; index++) {
      const resource = this.catalog.resources[index]!;
      if (this.options.signal?.aborted) {
        this.reports.set(resource.id, {
          ...this.reports.get(resource.id)!,
          status: "skipped",
          reason: "interrupted",
        });
        continue;
      }
      this.cursor = index;
      await this.visit(resource);
      this.options.onEvent?.({
        kind: "resource",
        host: this.host.name,
        index,
        total,
        report: this.reports.get(resource.id)!,
      });
    }
    this.cursor = total;
    await this.deliverDelayed();
    const resources = [...this.reports.values()];
    // where a resource was declared matters when it did something; resolving it for all costs time
    for (const report of resources) {
      if (report.status !== "unchanged") {
        const { file, line, recipe } = this.byId.get(report.id)!.source;
        report.source = { file, line, recipe };
      }
    }
    const summary = summarize(resources);
    return {
      status: this.options.signal?.aborted ? "interrupted" : summary.failed > 0 ? "failed" : "ok",
      mode: this.options.mode,
      host: this.host.name,
      runList: this.catalog.runList,
      startedAt,
      durationMs: Math.round(performance.now() - started),
      summary,
      resources,
      notifications: { fromPreviousRun: this.fromPreviousRun, kept: this.kept },
    };
  }

  async visit(resource: CatalogResource): Promise<void> {
    const report = this.reports.get(resource.id)!;
    const blocker =
      this.blocked.size > 0
        ? this.predecessors.get(resource.id)?.find((id) => this.blocked.has(id))
        : undefined;
    if (blocker) {
      report.status = "skipped";
      report.reason = `${blocker} failed`;
      this.blocked.add(resource.id);
      return;
    }
    if (resource.children) await this.settleComposite(resource, report);
    else await this.run(resource, resource.actions, report);
  }

  /**
   * A composite has nothing of its own to converge: it changed when one of its resources did
   * (they all come before it), and then notifies like any resource.
   */
  async settleComposite(resource: CatalogResource, report: ResourceReport): Promise<void> {
    const skip = resource.onlyIf || resource.notIf ? await this.guardsSay(resource) : undefined;
    if (skip) {
      report.status = "skipped";
      report.reason = skip;
      return;
    }
    const changed = resource.children!.filter((id) => {
      const status = this.reports.get(id)?.status;
      return status === "changed" || status === "pending";
    });
    if (changed.length === 0) return;
    report.status = this.plan ? "pending" : "changed";
    report.actions.push(...resource.actions.filter((action) => action !== "nothing"));
    report.diff = [{ property: "resources", to: changed.join(", ") }];
    if (!this.plan) this.changed.add(resource.id);
    await this.notify(resource);
  }

  /** Runs actions on a resource: guards, then read, diff, apply per action. Updates its report. */
  async run(
    resource: CatalogResource,
    actions: string[],
    report: ResourceReport,
    notifiedBy?: string,
  ): Promise<boolean> {
    const type = this.options.types[resource.type]!;
    const started = performance.now();
    const changes: Change[] = [];
    const acted: string[] = [];
    try {
      const skip =
        resource.onlyIf || resource.notIf || resource.parentGuards
          ? await this.guardsSay(resource)
          : undefined;
      if (skip) {
        if (!notifiedBy) {
          report.status = "skipped";
          report.reason = skip;
        }
        return false;
      }
      for (const action of actions) {
        if (action === "nothing") continue;
        const current = await this.current(resource);
        const diff = type.diff(current, resource.props, action);
        if (diff.length === 0) continue;
        changes.push(...diff);
        acted.push(action);
        if (this.plan) continue;
        await this.applyWithRetries(resource, type, action, current);
      }
    } catch (error) {
      report.status = "failed";
      report.error = describeError(error, resource.sensitive, secretsOf(resource, type));
      if (resource.ignoreFailure) report.ignored = true;
      else this.blocked.add(resource.id);
      return false;
    } finally {
      report.durationMs += Math.round(performance.now() - started);
      if (changes.length > 0) {
        report.diff = [...(report.diff ?? []), ...redactChanges(resource, type, changes)];
        report.actions.push(...acted);
      }
    }
    if (changes.length === 0) return false;
    report.status = this.plan ? "pending" : "changed";
    if (!this.plan) {
      this.changed.add(resource.id);
      const path = resource.props.path;
      if (type.type === "directory" && typeof path === "string" && changes.some(isCreation))
        this.createdDirectories.set(resource.id, path);
      // a package or a command may change anything: read everything after it again
      if (type.broadEffects) this.prefetch(this.cursor + 1);
    }
    await this.notify(resource);
    return true;
  }

  async applyWithRetries(resource: CatalogResource, type: ResourceType, action: string, current: unknown) {
    const context = { stateDir: this.options.stateDir };
    for (let attempt = 0; ; attempt += 1) {
      try {
        await type.apply(this.host, resource.props, action, current, context);
        break;
      } catch (error) {
        if (attempt >= resource.retries) throw error;
        await new Promise((resolve) => setTimeout(resolve, resource.retryDelay * 1000));
        current = await type.read(this.host, resource.props);
        if (type.diff(current, resource.props, action).length === 0) break;
      }
    }
    const after = await type.read(this.host, resource.props);
    this.reads.set(resource.id, Promise.resolve(after));
    if (type.imperative?.includes(action)) return;
    const left = type.diff(after, resource.props, action);
    if (left.length > 0) {
      throw new GalleyError(
        "RESOURCE_TYPE_ERROR",
        `resource type error: ${type.type} still differs right after its own ${action}: ${left.map((c) => c.property).join(", ")}`,
        { hint: `the ${type.type} type is not idempotent; report this as a bug in the type` },
      );
    }
  }

  async notify(resource: CatalogResource): Promise<void> {
    for (const notification of resource.notifies) {
      if (notification.timing === "immediate") {
        await this.deliver({
          target: notification.target,
          action: notification.action,
          by: resource.id,
          since: now(),
        });
      } else {
        const queued = this.delayed.find(
          (d) => d.target === notification.target && d.action === notification.action,
        );
        // deduplicated: delivered once, but every source is named
        if (queued) {
          if (queued.by.split(", ").length < 5) queued.by = `${queued.by}, ${resource.id}`;
        } else {
          this.delayed.push({
            target: notification.target,
            action: notification.action,
            by: resource.id,
            since: now(),
          });
          await this.persist();
        }
      }
    }
  }

  /** Runs a notified action on its target; false when it could not be delivered. */
  async deliver(notification: PendingNotification): Promise<boolean> {
    const target = this.byId.get(notification.target)!;
    const report = this.reports.get(target.id)!;
    const note = {
      action: notification.action,
      by: notification.by,
      status: "kept" as ResourceReport["status"] | "kept",
    };
    report.notified = [...(report.notified ?? []), note];
    if (this.blocked.has(target.id)) return false;
    const before = report.status;
    const changed = await this.run(target, [notification.action], report, notification.by);
    if (report.status === "failed") {
      note.status = "failed";
      return false;
    }
    note.status = changed ? report.status : "unchanged";
    if (!changed) report.status = before;
    return true;
  }

  async deliverDelayed(): Promise<void> {
    for (const notification of [...this.delayed]) {
      // an interrupted run delivers nothing more: what is queued stays recorded for the next run
      if (this.options.signal?.aborted) break;
      const delivered = await this.deliver(notification);
      if (delivered || this.plan) this.delayed.splice(this.delayed.indexOf(notification), 1);
      if (!this.plan) await this.persist();
    }
    this.kept.push(...this.delayed.filter((n) => !this.kept.includes(n)));
    if (this.kept.length > 0 && !this.plan) await this.persist();
  }

  async loadPending(): Promise<void> {
    for (const notification of await this.store.load()) {
      if (this.byId.has(notification.target)) {
        this.delayed.push(notification);
        this.fromPreviousRun.push(notification);
      } else this.kept.push(notification);
    }
  }

  async persist(): Promise<void> {
    if (this.plan) return;
    const all = [...this.kept, ...this.delayed.filter((n) => !this.kept.includes(n))];
    await this.store.save(all);
  }

  /** The resource's state: the prefetched read, or a fresh one when something it depends on changed. */
  current(resource: CatalogResource): Promise<unknown> {
    const cached = this.reads.get(resource.id);
    if (cached && !this.dependsOnChange(resource.id)) return cached;
    const fresh = this.read(resource);
    this.reads.set(resource.id, fresh);
    return fresh;
  }

  read(resource: CatalogResource): Promise<unknown> {
    const type = this.options.types[resource.type]!;
    return this.readLimit(() => type.read(this.host, resource.props));
  }

  /** Starts reading every resource from `from` on, concurrently; a failed read fails at its turn. */
  prefetch(from: number): void {
    for (const resource of this.catalog.resources.slice(from)) {
      if (resource.actions.every((action) => action === "nothing")) {
        this.reads.delete(resource.id);
        continue;
      }
      const read = this.read(resource);
      read.catch(() => {});
      this.reads.set(resource.id, read);
    }
  }

  /**
   * Whether a resource it depends on changed. A directory created where nothing was changes
   * nothing that another path's read saw (below it, everything was and still is absent), so it
   * does not count for a resource at another path: over SSH that saves a read per file of a new tree.
   */
  dependsOnChange(id: string): boolean {
    if (this.changed.size === 0) return false;
    const own = this.byId.get(id)?.props.path;
    const seen = new Set<string>();
    const stack = [...(this.predecessors.get(id) ?? [])];
    while (stack.length > 0) {
      const next = stack.pop()!;
      if (this.changed.has(next)) {
        const created = this.createdDirectories.get(next);
        if (created === undefined || typeof own !== "string" || own === created) return true;
      }
      if (seen.has(next)) continue;
      seen.add(next);
      stack.push(...(this.predecessors.get(next) ?? []));
    }
    return false;
  }

  /** A reason to skip when a guard says so, else undefined. */
  async guardsSay(resource: CatalogResource): Promise<string | undefined> {
    // a composite's guards are asked once per run, before its first resource, as Chef does
    for (const parent of resource.parentGuards ?? []) {
      if (parent.onlyIf && !(await this.evaluateOnce(parent.onlyIf)))
        return `onlyIf guard of ${parent.of} is false`;
      if (parent.notIf && (await this.evaluateOnce(parent.notIf)))
        return `notIf guard of ${parent.of} is true`;
    }
    const evaluate = resource.children ? this.evaluateOnce.bind(this) : this.evaluate.bind(this);
    if (resource.onlyIf && !(await evaluate(resource.onlyIf))) return "onlyIf guard is false";
    if (resource.notIf && (await evaluate(resource.notIf))) return "notIf guard is true";
    return undefined;
  }

  readonly guardResults = new Map<Guard, Promise<boolean>>();

  evaluateOnce(guard: Guard): Promise<boolean> {
    let result = this.guardResults.get(guard);
    if (!result) {
      result = this.evaluate(guard);
      this.guardResults.set(guard, result);
    }
    return result;
  }

  async evaluate(guard: Guard): Promise<boolean> {
    if ("fn" in guard) return Boolean(await guard.fn({ host: this.host, facts: await this.host.facts() }));
    const argv = typeof guard.command === "string" ? ["sh", "-c", guard.command] : guard.command;
    const result = await this.host.exec(argv);
    return result.exitCode === 0;
  }
}

function describeError(
  error: unknown,
  sensitive: boolean,
  secrets: string[],
): NonNullable<ResourceReport["error"]> {
  // a sensitive resource's error may quote its command or content: say only that it failed
  if (sensitive) {
    return {
      ...(isGalleyError(error) ? { code: error.code } : {}),
      message: "failed; the details are hidden because the resource is sensitive",
      hint: "run the step by hand, or set sensitive: false while debugging",
    };
  }
  // and any secret of the run (a decrypted attribute) that a message quotes
  const hide = (text: string) => scrubSecrets(scrub(text, secrets));
  const message = hide(errorMessage(error));
  if (!isGalleyError(error)) return { message };
  return { code: error.code, message, ...(error.hint ? { hint: hide(error.hint) } : {}) };
}

function isCreation(change: Change): boolean {
  return change.property === "ensure" && change.from === "absent";
}

function now(): string {
  return new Date().toISOString();
}
