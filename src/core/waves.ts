import type { Catalog, CatalogResource } from "./catalog.ts";
import type { Host } from "./host.ts";
import type { Notifications } from "./notifications.ts";
import type { ResourceType } from "./resource.ts";
import type { ResourceReport } from "./report.ts";

/** What forming and applying a wave need from the run. */
export interface WaveContext {
  catalog: Catalog;
  host: Host;
  plan: boolean;
  options: { types: Readonly<Record<string, ResourceType>> };
  predecessors: Map<string, string[]>;
  reports: Map<string, ResourceReport>;
  blocked: Set<string>;
  position: Map<string, number>;
  notifications: Notifications;
  /** runs actions on a resource; a wave's members meet at `wave` between diff and apply */
  run(
    resource: CatalogResource,
    actions: string[],
    report: ResourceReport,
    notifiedBy?: string,
    wave?: IntentBarrier,
  ): Promise<boolean>;
}

/**
 * The wave starting at `index`: the resource there and, when it can go in a wave, every later
 * one that can too and whose dependencies are all done, up to the next resource that cannot (a
 * package, a command, a guard: those keep their place in the order). Resources skipped over
 * (waiting for a member of this wave) come in a later wave.
 */
export function waveFrom(run: WaveContext, index: number, done: Set<string>): CatalogResource[] {
  const first = run.catalog.resources[index]!;
  if (run.plan || !canWave(run, first)) return [first];
  const wave = [first];
  // a host that sends a wave's writes together says how many; others apply one at a time
  const size = run.host.waveSize ?? 1;
  for (let j = index + 1; j < run.catalog.resources.length && wave.length < size; j++) {
    const resource = run.catalog.resources[j]!;
    if (done.has(resource.id)) continue;
    if (!canWave(run, resource)) break;
    if ((run.predecessors.get(resource.id) ?? []).every((id) => done.has(id))) wave.push(resource);
  }
  return wave;
}

/**
 * Whether a resource can be applied together with others: a type that changes only its own path,
 * one action that is not imperative, no guard, no immediate notification (its or its composite's)
 * and no immediate notification of an earlier run waiting for it.
 */
export function canWave(run: WaveContext, resource: CatalogResource): boolean {
  const type = run.options.types[resource.type];
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
    !run.notifications.afterSource.has(resource.id) &&
    run.notifications
      .notificationsOf(resource)
      .every(({ notification }) => notification.timing !== "immediate")
  );
}

/**
 * Applies a wave: every member reads and diffs (concurrently: the reads batch), the intents of
 * all that change are recorded in one ledger write, then all apply at once (a remote host sends
 * their writes in one command) and read back (batched again). Then, in catalog order, each
 * changed member queues its notifications. A failed member fails alone.
 */
export async function applyWave(run: WaveContext, wave: CatalogResource[]): Promise<void> {
  const members: CatalogResource[] = [];
  for (const resource of wave) {
    const report = run.reports.get(resource.id)!;
    const blocker = run.predecessors.get(resource.id)?.find((id) => run.blocked.has(id));
    if (blocker) {
      report.status = "skipped";
      report.reason = `${blocker} failed`;
      run.blocked.add(resource.id);
    } else members.push(resource);
  }
  const order = (a: CatalogResource, b: CatalogResource) => run.position.get(a.id)! - run.position.get(b.id)!;
  const barrier = new IntentBarrier(members.length, (changing) =>
    run.notifications.recordIntents(changing.sort(order)),
  );
  const changed = await Promise.all(
    members.map((resource) =>
      run.run(resource, resource.actions, run.reports.get(resource.id)!, undefined, barrier),
    ),
  );
  for (const [i, resource] of members.entries()) if (changed[i]) await run.notifications.notify(resource);
}

/**
 * Where the members of a wave meet between diff and apply: when each has said whether it changes
 * (arrive with itself) or not (arrive with undefined), the intents of all that change are
 * recorded at once, and their applies go on together.
 */
export class IntentBarrier {
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
