import type { Catalog, CatalogResource, Notification } from "./catalog.ts";
import type { Host } from "./host.ts";
import { asPending, Ledger, type LedgerEntry, publicId, randomHex, recipeOf, scopeOf } from "./ledger.ts";
import type { ResourceType } from "./resource.ts";
import type { PendingNotification, ResourceReport } from "./report.ts";
import type { Secrets } from "./secrets.ts";
import { sweepTempFiles } from "./temp-files.ts";

/** A notification to deliver in this run, with its ledger entry (none in a plan). */
export interface Delivery {
  target: CatalogResource;
  action: string;
  by: string;
  since: string;
  entry?: LedgerEntry | undefined;
  done?: boolean;
}

/** The options of a run that its notifications read: the state dir, the types, the abort signal, the secrets. */
export interface DeliveryOptions {
  stateDir: string;
  types: Readonly<Record<string, ResourceType>>;
  signal?: AbortSignal | undefined;
  /** the run's registry: ids written to the ledger are scrubbed with it */
  secrets: Secrets;
}

/** What the notifications of a run need from the run: its catalog, reports, and a way to run an action. */
export interface DeliveryContext {
  catalog: Catalog;
  host: Host;
  options: DeliveryOptions;
  plan: boolean;
  byId: Map<string, CatalogResource>;
  reports: Map<string, ResourceReport>;
  /** resources that failed or were skipped because of a failure: notifications to them are kept */
  blocked: Set<string>;
  /** runs actions on a resource, as notified by `notifiedBy`; true when it changed */
  run: (
    resource: CatalogResource,
    actions: string[],
    report: ResourceReport,
    notifiedBy: string,
  ) => Promise<boolean>;
}

/**
 * The notifications of a run and their ledger: intents written before a change, deliveries
 * (immediate, delayed, and those of an earlier run), what is kept for the next run, what vanished,
 * and the run marker with the sweep of an interrupted run's temp files.
 */
export class Notifications {
  readonly catalog: Catalog;
  readonly host: Host;
  readonly options: DeliveryOptions;
  readonly plan: boolean;
  readonly byId: Map<string, CatalogResource>;
  readonly reports: Map<string, ResourceReport>;
  readonly blocked: Set<string>;
  readonly run: DeliveryContext["run"];
  /** delayed notifications to deliver at the end, in order */
  readonly delayed: Delivery[] = [];
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

  constructor(context: DeliveryContext) {
    this.catalog = context.catalog;
    this.host = context.host;
    this.options = context.options;
    this.plan = context.plan;
    this.byId = context.byId;
    this.reports = context.reports;
    this.blocked = context.blocked;
    this.run = context.run;
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
        const source = entry && publicId(resource, this.options.types[resource.type], this.options.secrets);
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

  /** Delivers the delayed notifications at the end of the run; those that cannot be delivered are kept. */
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

  /** Reports an undelivered notification as kept: its ledger entry stays for the next run. */
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
        target: publicId(target, this.options.types[target.type], this.options.secrets),
        targetHash: this.hashOf(target),
        scope: scopeOf(target, this.byId),
        recipe: recipeOf(target, this.byId),
        action: notification.action,
        timing: notification.timing,
        by: [publicId(source, this.options.types[source.type], this.options.secrets)],
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

  /** The ledger's hash of a resource (its scope and id), computed once per run. */
  hashOf(resource: CatalogResource): string {
    let hash = this.hashes.get(resource.id);
    if (hash === undefined) {
      hash = this.ledger!.hash(scopeOf(resource, this.byId), resource.id);
      this.hashes.set(resource.id, hash);
    }
    return hash;
  }

  /** The ledger key of a notification: its target and action, and for an immediate one its source. */
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
    const ledger = await Ledger.load(this.host, this.options.stateDir, this.options.secrets);
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
}

function now(): string {
  return new Date().toISOString();
}
