import type { Catalog, CatalogResource, Notification } from "./catalog.ts";
import { errorMessage, GalleyError, isGalleyError } from "./errors.ts";
import type { Host } from "./host.ts";
import { asPending, Ledger, type LedgerEntry, publicId, randomHex, recipeOf, scopeOf } from "./ledger.ts";
import { Guards } from "./guards.ts";
import { limit } from "./limit.ts";
import { scrubSecrets } from "./secrets.ts";
import { sweepTempFiles } from "./temp-files.ts";
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
  /** delayed notifications to deliver at the end, in order */
  readonly delayed: Delivery[] = [];
  readonly readLimit: <T>(task: () => Promise<T>) => Promise<T>;
  readonly position = new Map<string, number>();
  readonly guards: Guards;
  ledger: Ledger | undefined;
  /** ledger entries by key, and those this run recorded as intents and whose source has not changed yet */
  readonly entries = new Map<string, LedgerEntry>();
  readonly unconfirmed = new Set<LedgerEntry>();
  /** immediate notifications of an earlier run, delivered right after their source in this one */
  readonly afterSource = new Map<string, Delivery[]>();
  /** the run marker is written (this run changed something, or recovers an interrupted one) */
  marked = false;
  ledgerDirty = false;
  kept: PendingNotification[] = [];
  fromPreviousRun: PendingNotification[] = [];
  vanished: PendingNotification[] = [];
  /** temp files of an interrupted run, removed at the start of this one */
  swept: string[] = [];
  cursor = 0;

  constructor(catalog: Catalog, host: Host, options: ConvergeOptions) {
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
  }

  async execute(): Promise<Report> {
    const started = performance.now();
    const startedAt = new Date().toISOString();
    const total = this.catalog.resources.length;
    this.options.onEvent?.({ kind: "start", host: this.host.name, total });
    await this.loadLedger();
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
      const wave = this.waveFrom(index, done);
      if (wave.length > 1) await this.visitWave(wave);
      else {
        await this.visit(resource);
        if (this.afterSource.size > 0) await this.deliverAfterSource(resource);
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
    await this.deliverDelayed();
    await this.closeLedger();
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
        fromPreviousRun: this.fromPreviousRun,
        kept: this.kept,
        ...(this.vanished.length > 0 ? { vanished: this.vanished } : {}),
      },
      ...(this.swept.length > 0 ? { tempFilesRemoved: this.swept.map(scrubSecrets) } : {}),
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
   * The wave starting at `index`: the resource there and, when it can go in a wave, every later
   * one that can too and whose dependencies are all done, up to the next resource that cannot (a
   * package, a command, a guard: those keep their place in the order). Resources skipped over
   * (waiting for a member of this wave) come in a later wave.
   */
  waveFrom(index: number, done: Set<string>): CatalogResource[] {
    const first = this.catalog.resources[index]!;
    if (this.plan || !this.canWave(first)) return [first];
    const wave = [first];
    // a host that sends a wave's writes together says how many; others apply one at a time
    const size = this.host.waveSize ?? 1;
    for (let j = index + 1; j < this.catalog.resources.length && wave.length < size; j++) {
      const resource = this.catalog.resources[j]!;
      if (done.has(resource.id)) continue;
      if (!this.canWave(resource)) break;
      if ((this.predecessors.get(resource.id) ?? []).every((id) => done.has(id))) wave.push(resource);
    }
    return wave;
  }

  /**
   * Whether a resource can be applied together with others: a type that changes only its own path,
   * one action that is not imperative, no guard, no immediate notification (its or its composite's)
   * and no immediate notification of an earlier run waiting for it.
   */
  canWave(resource: CatalogResource): boolean {
    const type = this.options.types[resource.type];
    const [action, more] = resource.actions;
    return (
      type?.concurrent === true &&
      action !== undefined &&
      more === undefined &&
      action !== "nothing" &&
      !type.imperative?.includes(action) &&
      !resource.children &&
      !resource.onlyIf &&
      !resource.notIf &&
      !resource.parentGuards &&
      !this.afterSource.has(resource.id) &&
      this.notificationsOf(resource).every(({ notification }) => notification.timing !== "immediate")
    );
  }

  /**
   * Applies a wave: every member reads and diffs (concurrently: the reads batch), the intents of
   * all that change are recorded in one ledger write, then all apply at once (a remote host sends
   * their writes in one command) and read back (batched again). Then, in catalog order, each
   * changed member queues its notifications. A failed member fails alone.
   */
  async visitWave(wave: CatalogResource[]): Promise<void> {
    const members: CatalogResource[] = [];
    for (const resource of wave) {
      const report = this.reports.get(resource.id)!;
      const blocker = this.predecessors.get(resource.id)?.find((id) => this.blocked.has(id));
      if (blocker) {
        report.status = "skipped";
        report.reason = `${blocker} failed`;
        this.blocked.add(resource.id);
      } else members.push(resource);
    }
    const order = (a: CatalogResource, b: CatalogResource) =>
      this.position.get(a.id)! - this.position.get(b.id)!;
    const barrier = new IntentBarrier(members.length, (changing) => this.recordIntents(changing.sort(order)));
    const changed = await Promise.all(
      members.map((resource) =>
        this.run(resource, resource.actions, this.reports.get(resource.id)!, undefined, barrier),
      ),
    );
    for (const [i, resource] of members.entries()) if (changed[i]) await this.notify(resource);
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
    await this.notify(resource);
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
        } else if (!this.marked || this.notificationsOf(resource).length > 0)
          await this.recordIntent(resource);
        await this.applyWithRetries(resource, type, action, current);
      }
    } catch (error) {
      if (wave && !arrived) {
        arrived = true;
        wave.arrive(undefined);
      }
      report.status = "failed";
      report.error = describeError(error, resource.sensitive, secretsOf(resource, type));
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
    if (!wave) await this.notify(resource);
    return true;
  }

  async applyWithRetries(resource: CatalogResource, type: ResourceType, action: string, current: unknown) {
    const context = { stateDir: this.options.stateDir, sensitive: resource.sensitive };
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

  /** Sends a changed resource's notifications: immediate ones run now, delayed ones are queued. */
  async notify(resource: CatalogResource): Promise<void> {
    for (const notification of resource.notifies) {
      const target = this.byId.get(notification.target)!;
      const entry = this.plan ? undefined : this.entries.get(this.keyOf(resource, notification));
      if (entry) {
        this.unconfirmed.delete(entry);
        if (entry.state !== "pending") {
          entry.state = "pending";
          this.ledgerDirty = true;
        }
      }
      const by = entry ? entry.by.join(", ") : resource.id;
      if (notification.timing === "immediate") {
        await this.deliver({ target, action: notification.action, by, since: now(), entry });
        continue;
      }
      const queued = this.delayed.find((d) => d.target === target && d.action === notification.action);
      // deduplicated: delivered once, but every source is named
      if (queued) {
        if (queued.by.split(", ").length < 5) queued.by = `${queued.by}, ${resource.id}`;
        if (entry && !queued.entry) queued.entry = entry;
        const source = entry && publicId(resource, this.options.types[resource.type]);
        if (entry && source && entry.by.length < 5 && !entry.by.includes(source)) {
          entry.by.push(source);
          this.ledgerDirty = true;
        }
      } else this.delayed.push({ target, action: notification.action, by, since: now(), entry });
    }
  }

  /** Runs a notified action on its target; false when it could not be delivered (it stays in the ledger). */
  async deliver(delivery: Delivery): Promise<boolean> {
    const target = delivery.target;
    const report = this.reports.get(target.id)!;
    const note = {
      action: delivery.action,
      by: delivery.by,
      status: "kept" as ResourceReport["status"] | "kept",
    };
    report.notified = [...(report.notified ?? []), note];
    if (this.blocked.has(target.id)) return false;
    const before = report.status;
    const changed = await this.run(target, [delivery.action], report, delivery.by);
    if (report.status === "failed") {
      note.status = "failed";
      return false;
    }
    note.status = changed ? report.status : "unchanged";
    if (!changed) report.status = before;
    // cleared right after the action succeeded: a kill in between (one durable write) repeats it
    if (delivery.entry && !this.plan) await this.forget(delivery.entry);
    delivery.done = true;
    return true;
  }

  /** Delivered already in this run: by this delivery, or by another one of the same ledger entry. */
  delivered(delivery: Delivery): boolean {
    return delivery.done === true || (delivery.entry !== undefined && !this.entries.has(delivery.entry.key));
  }

  async deliverDelayed(): Promise<void> {
    for (const delivery of this.delayed) {
      if (this.delivered(delivery)) continue;
      // an interrupted run delivers nothing more: what is queued stays in the ledger for the next run
      if (this.options.signal?.aborted || !(await this.deliver(delivery))) this.keep(delivery);
    }
  }

  /** Immediate notifications an interrupted run recorded, delivered right after their source. */
  async deliverAfterSource(resource: CatalogResource): Promise<void> {
    const waiting = this.afterSource.get(resource.id);
    if (!waiting) return;
    this.afterSource.delete(resource.id);
    for (const delivery of waiting) {
      if (!this.delivered(delivery) && !(await this.deliver(delivery))) this.keep(delivery);
    }
  }

  keep(delivery: Delivery): void {
    const kept = delivery.entry
      ? asPending(delivery.entry)
      : { target: delivery.target.id, action: delivery.action, by: delivery.by, since: delivery.since };
    this.kept.push(kept);
  }

  /** The notifications a change of this resource sends: its own and those of the composites holding it. */
  notificationsOf(resource: CatalogResource): { source: CatalogResource; notification: Notification }[] {
    const found = resource.notifies.map((notification) => ({ source: resource, notification }));
    for (let up = resource.parent; up !== undefined; ) {
      const parent = this.byId.get(up);
      if (!parent) break;
      for (const notification of parent.notifies) found.push({ source: parent, notification });
      up = parent.parent;
    }
    return found;
  }

  /**
   * Before a change: the run marker (once per run) and an intent for each notification the
   * change would send that the ledger does not hold yet, written durably.
   */
  async recordIntent(resource: CatalogResource): Promise<void> {
    await this.recordIntents([resource]);
  }

  /** recordIntent for several resources (a wave's changes): one ledger write for all. */
  async recordIntents(resources: CatalogResource[]): Promise<void> {
    if (resources.length === 0) return;
    const ledger = this.ledger!;
    if (!this.marked) {
      await ledger.markRunning();
      this.marked = true;
    }
    let added = false;
    for (const { source, notification } of resources.flatMap((resource) => this.notificationsOf(resource))) {
      const key = this.keyOf(source, notification);
      if (this.entries.has(key)) continue;
      const target = this.byId.get(notification.target)!;
      const entry: LedgerEntry = {
        id: randomHex(4),
        key,
        target: publicId(target, this.options.types[target.type]),
        targetHash: this.hashOf(target),
        scope: scopeOf(target, this.byId),
        recipe: recipeOf(target, this.byId),
        action: notification.action,
        timing: notification.timing,
        by: [publicId(source, this.options.types[source.type])],
        ...(notification.timing === "immediate" ? { sourceHash: this.hashOf(source) } : {}),
        state: "intent",
        runList: this.catalog.runList,
        since: now(),
      };
      ledger.entries.push(entry);
      this.entries.set(key, entry);
      this.unconfirmed.add(entry);
      added = true;
    }
    if (added) {
      await ledger.save();
      this.ledgerDirty = false;
    }
  }

  /** Removes a delivered entry from the ledger, durably. */
  async forget(entry: LedgerEntry): Promise<void> {
    const ledger = this.ledger!;
    ledger.entries = ledger.entries.filter((e) => e !== entry);
    this.entries.delete(entry.key);
    await ledger.save();
    this.ledgerDirty = false;
  }

  readonly hashes = new Map<string, string>();

  hashOf(resource: CatalogResource): string {
    let hash = this.hashes.get(resource.id);
    if (hash === undefined) {
      hash = this.ledger!.hash(scopeOf(resource, this.byId), resource.id);
      this.hashes.set(resource.id, hash);
    }
    return hash;
  }

  keyOf(source: CatalogResource, notification: Notification): string {
    const target = this.hashOf(this.byId.get(notification.target)!);
    return notification.timing === "immediate"
      ? `${this.hashOf(source)}>${target}:${notification.action}`
      : `${target}:${notification.action}`;
  }

  /**
   * Reads the ledger: entries whose target this run declares (same id, same declaring cookbook)
   * are delivered (delayed ones at the end, immediate ones right after their source); others are
   * left to their own run. After an interrupted run, temp files it left are swept first.
   */
  async loadLedger(): Promise<void> {
    const ledger = await Ledger.load(this.host, this.options.stateDir);
    this.ledger = ledger;
    if (ledger.interrupted && !this.plan) await this.sweep();
    if (ledger.entries.length === 0) return;
    const byHash = new Map<string, CatalogResource>();
    const legacy = ledger.entries.some((entry) => entry.scope === "*");
    for (const resource of this.catalog.resources) {
      byHash.set(this.hashOf(resource), resource);
      if (legacy) byHash.set(ledger.hash("*", resource.id), resource);
    }
    const recipes = new Set(this.catalog.resources.filter((r) => !r.parent).map((r) => r.source.recipe));
    const runList = JSON.stringify(this.catalog.runList);
    for (const entry of ledger.entries) {
      const target = byHash.get(entry.targetHash);
      if (!target) {
        // gone from the run that recorded it, or from the recipe that declared it: say so once
        const gone = JSON.stringify(entry.runList) === runList || recipes.has(entry.recipe);
        if (gone && !entry.reported) {
          this.vanished.push(asPending(entry));
          if (!this.plan) {
            entry.reported = now();
            this.ledgerDirty = true;
          }
        }
        continue;
      }
      this.fromPreviousRun.push(asPending(entry));
      const delivery: Delivery = {
        target,
        action: entry.action,
        by: entry.by.join(", "),
        since: entry.since,
        ...(this.plan ? {} : { entry }),
      };
      if (!this.plan) this.entries.set(entry.key, entry);
      const source = entry.sourceHash ? byHash.get(entry.sourceHash) : undefined;
      if (entry.timing === "immediate" && source) {
        const list = this.afterSource.get(source.id);
        if (list) list.push(delivery);
        else this.afterSource.set(source.id, [delivery]);
      } else this.delayed.push(delivery);
    }
  }

  /** Removes the temp files an interrupted run left beside managed files, in the state dir and its backups. */
  async sweep(): Promise<void> {
    const dirs = new Set<string>([this.options.stateDir]);
    for (const resource of this.catalog.resources) {
      const file = resource.props.path;
      if (typeof file === "string" && file.startsWith("/") && !file.includes("\n"))
        dirs.add(file.slice(0, file.lastIndexOf("/")) || "/");
    }
    this.swept = await sweepTempFiles(this.host, [...dirs], [`${this.options.stateDir}/backup`]);
    // the marker found stays until this run ends: killed before, the next run sweeps again
    this.marked = true;
  }

  /** After the last delivery: drops intents whose source did not change, saves, clears the run marker. */
  async closeLedger(): Promise<void> {
    if (this.plan || !this.ledger) return;
    // interrupted: the host refuses new commands; the ledger on disk and the marker stay as they are,
    // so the next run delivers what is recorded and sweeps
    if (this.options.signal?.aborted) return;
    if (this.unconfirmed.size > 0) {
      this.ledger.entries = this.ledger.entries.filter((entry) => !this.unconfirmed.has(entry));
      this.ledgerDirty = true;
    }
    if (this.ledgerDirty) await this.ledger.save();
    if (this.marked) await this.ledger.clearRunning();
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

/**
 * Where the members of a wave meet between diff and apply: when each has said whether it changes
 * (arrive with itself) or not (arrive with undefined), the intents of all that change are
 * recorded at once, and their applies go on together.
 */
class IntentBarrier {
  readonly #changing: CatalogResource[] = [];
  readonly #record: (changing: CatalogResource[]) => Promise<void>;
  #waiting: number;
  readonly #gate: PromiseWithResolvers<void> = Promise.withResolvers<void>();

  constructor(members: number, record: (changing: CatalogResource[]) => Promise<void>) {
    this.#waiting = members;
    this.#record = record;
    this.#gate.promise.catch(() => {});
    if (members === 0) this.#gate.resolve();
  }

  /** Says this member is past its diff; resolves when the intents of the wave are recorded. */
  arrive(resource: CatalogResource | undefined): Promise<void> {
    if (resource) this.#changing.push(resource);
    this.#waiting -= 1;
    if (this.#waiting === 0) this.#record(this.#changing).then(this.#gate.resolve, this.#gate.reject);
    return this.#gate.promise;
  }
}

/** A notification to deliver in this run, with its ledger entry (none in a plan). */
interface Delivery {
  target: CatalogResource;
  action: string;
  by: string;
  since: string;
  entry?: LedgerEntry | undefined;
  done?: boolean;
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
