import type { Catalog, CatalogResource } from "./catalog.ts";
import { errorMessage, GalleyError, isGalleyError } from "./errors.ts";
import type { Host } from "./host.ts";
import { Guards } from "./guards.ts";
import { limit } from "./limit.ts";
import { Notifications } from "./notifications.ts";
import { currentSecrets, type Secrets, withSecrets } from "./secrets.ts";
import { type Report, type ResourceReport, redactChanges, scrub, secretsOf, summarize } from "./report.ts";
import type { Change, ResourceType } from "./resource.ts";
import { applyWave, type IntentBarrier, waveFrom } from "./waves.ts";

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
  /**
   * the run's secret registry: what errors, ledger ids and temp file names are scrubbed with, and
   * what a file's content is checked against before a backup (default: `currentSecrets()`)
   */
  secrets?: Secrets | undefined;
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
  const secrets = options.secrets ?? currentSecrets();
  // a resource type that registers a secret while it runs registers it in this run's registry
  return withSecrets(secrets, () => new Run(catalog, host, { ...options, secrets }).execute());
}

class Run {
  readonly catalog: Catalog;
  readonly host: Host;
  readonly options: ConvergeOptions & { secrets: Secrets };
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
  readonly readLimit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly position = new Map<string, number>();
  readonly notifications: Notifications;
  readonly guards: Guards;
  cursor = 0;

  constructor(catalog: Catalog, host: Host, options: ConvergeOptions & { secrets: Secrets }) {
    this.catalog = catalog;
    this.host = host;
    this.options = options;
    this.plan = options.mode === "plan";
    this.byId = new Map(catalog.resources.map((r) => [r.id, r]));
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
    this.guards = new Guards(host);
    this.notifications = new Notifications({
      catalog,
      host,
      options,
      plan: this.plan,
      byId: this.byId,
      reports: this.reports,
      blocked: this.blocked,
      run: (resource, actions, report, notifiedBy) => this.run(resource, actions, report, notifiedBy),
    });
  }

  async execute(): Promise<Report> {
    const started = performance.now();
    const startedAt = new Date().toISOString();
    const total = this.catalog.resources.length;
    this.options.onEvent?.({ kind: "start", host: this.host.name, total });
    await this.notifications.loadLedger();
    this.prefetch(0);
    const done = new Set<string>();
    let emitted = 0;
    for (let index = 0; index < total; ) {
      const resource = this.catalog.resources[index]!;
      if (done.has(resource.id)) {
        index++;
        continue;
      }
      if (this.options.signal?.aborted) {
        this.reports.set(resource.id, {
          ...this.reports.get(resource.id)!,
          status: "skipped",
          reason: "interrupted",
        });
        done.add(resource.id);
        continue;
      }
      this.cursor = index;
      const wave = waveFrom(this, index, done);
      if (wave.length > 1) await applyWave(this, wave);
      else {
        await this.visit(resource);
        if (this.notifications.afterSource.size > 0) await this.notifications.deliverAfterSource(resource);
      }
      for (const member of wave) done.add(member.id);
      // events in catalog order, as each resource before them is done
      for (; emitted < total && done.has(this.catalog.resources[emitted]!.id); emitted++) {
        this.options.onEvent?.({
          kind: "resource",
          host: this.host.name,
          index: emitted,
          total,
          report: this.reports.get(this.catalog.resources[emitted]!.id)!,
        });
      }
    }
    this.cursor = total;
    await this.notifications.deliverDelayed();
    await this.notifications.closeLedger();
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
      notifications: {
        fromPreviousRun: this.notifications.fromPreviousRun,
        kept: this.notifications.kept,
        ...(this.notifications.vanished.length > 0 ? { vanished: this.notifications.vanished } : {}),
      },
      ...(this.notifications.swept.length > 0
        ? { tempFilesRemoved: this.notifications.swept.map((file) => this.options.secrets.scrub(file)) }
        : {}),
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
    const skip = resource.onlyIf || resource.notIf ? await this.guards.guardsSay(resource) : undefined;
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
    await this.notifications.notify(resource);
  }

  /** Runs actions on a resource: guards, then read, diff, apply per action. Updates its report. */
  async run(
    resource: CatalogResource,
    actions: string[],
    report: ResourceReport,
    notifiedBy?: string,
    wave?: IntentBarrier,
  ): Promise<boolean> {
    const type = this.options.types[resource.type]!;
    const started = performance.now();
    const changes: Change[] = [];
    const acted: string[] = [];
    let arrived = false;
    try {
      const skip =
        resource.onlyIf || resource.notIf || resource.parentGuards
          ? await this.guards.guardsSay(resource)
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
        // write-ahead: the run marker and the notifications this change will send, durably, before it
        if (wave) {
          arrived = true;
          await wave.arrive(resource);
        } else if (!this.notifications.marked || this.notifications.notificationsOf(resource).length > 0)
          await this.notifications.recordIntent(resource);
        await this.applyWithRetries(resource, type, action, current);
      }
    } catch (error) {
      if (wave && !arrived) {
        arrived = true;
        wave.arrive(undefined);
      }
      report.status = "failed";
      report.error = describeError(
        error,
        resource.sensitive,
        secretsOf(resource, type),
        this.options.secrets,
      );
      if (resource.ignoreFailure) report.ignored = true;
      else this.blocked.add(resource.id);
      return false;
    } finally {
      // a member that changes nothing still lets the others of its wave go on
      if (wave && !arrived) wave.arrive(undefined);
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
    // a wave's members notify after the wave, in catalog order
    if (!wave) await this.notifications.notify(resource);
    return true;
  }

  async applyWithRetries(resource: CatalogResource, type: ResourceType, action: string, current: unknown) {
    const context = {
      stateDir: this.options.stateDir,
      sensitive: resource.sensitive,
      secrets: this.options.secrets,
    };
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
}

function describeError(
  error: unknown,
  sensitive: boolean,
  secrets: string[],
  registry: Secrets,
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
  const hide = (text: string) => registry.scrub(scrub(text, secrets));
  const message = hide(errorMessage(error));
  if (!isGalleyError(error)) return { message };
  return { code: error.code, message, ...(error.hint ? { hint: hide(error.hint) } : {}) };
}

function isCreation(change: Change): boolean {
  return change.property === "ensure" && change.from === "absent";
}
