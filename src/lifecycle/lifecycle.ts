import { GalleyError } from "../core/errors.ts";
import type { HostPhase } from "../fleet/push.ts";
import type { Instance } from "../stacks/schema.ts";
import { buildStackState, type StackState } from "../stacks/state.ts";
import type { EventKind, EventRecord, InstanceStatus } from "../store/store.ts";
import { type PreparedApp, prepareApps } from "./apps.ts";
import type { StackContext } from "./context.ts";
import { type InstanceResult, runEvent } from "./events.ts";
import { provision, release } from "./providers.ts";
import { shouldRun } from "./scaling.ts";

/** One event as a command ran it: the stored record and each instance's result. */
export interface EventSummary {
  event: EventRecord;
  results: Map<string, InstanceResult>;
}

/** What a lifecycle command reports while it works. */
export interface LifecycleOptions {
  forks?: number;
  /** how long shutdown recipes may take before the host is stopped anyway (default 120 s) */
  shutdownTimeoutMs?: number;
  log?: (line: string) => void;
  onPhase?: (kind: EventKind, instance: string, phase: HostPhase) => void;
  /** an instance changed status */
  onStatus?: (instance: string, status: InstanceStatus, reason: string) => void;
  /** an event finished */
  onEvent?: (summary: EventSummary) => void;
  /** how long an instance waits for another run's lock on its host (default 600 s) */
  waitMs?: number | undefined;
  /** aborted (SIGINT, SIGTERM): running converges stop as interrupted, no new one starts */
  signal?: AbortSignal | undefined;
}

/** Which instances a `galley run` addresses. */
export interface Selection {
  layer?: string | undefined;
  instance?: string | undefined;
}

/**
 * The OpsWorks lifecycle of one stack: starting an instance (host → setup → deploy → online →
 * configure everywhere), stopping one (shutdown → host stopped → configure on the rest), events
 * on demand, and configure requests that coalesce: a queued configure overtaken by a newer one is
 * `superseded`, and a running one skips instances it has not reached once the state moved on.
 */
export class Lifecycle {
  readonly context: StackContext;
  readonly events: EventSummary[] = [];
  /** instances this lifecycle left in setup_failed, with why */
  readonly failedStarts: { instance: string; reason: string }[] = [];
  readonly #options: LifecycleOptions;
  #configuring: Promise<void> | undefined;
  readonly #queued: EventRecord[] = [];

  constructor(context: StackContext, options: LifecycleOptions = {}) {
    this.context = context;
    this.#options = options;
    this.#sync();
  }

  /** The current stack state and its version: a new version only when the state changed. */
  snapshot(): { state: StackState; version: number } {
    const { store, stack } = this.context;
    const records = store.listInstances(stack.name);
    const state = buildStackState(
      stack,
      records.map((r) => ({ name: r.name, status: r.status, address: r.address })),
    );
    const latest = store.latestState(stack.name);
    if (latest && JSON.stringify(latest.state) === JSON.stringify(state))
      return { state, version: latest.version };
    return { state, version: store.nextStateVersion(stack.name, state) };
  }

  /** `galley stack up`: starts what should run (24/7, and time-based inside their hours); stops time-based ones outside. */
  async up(now = new Date()): Promise<void> {
    const start: Instance[] = [];
    const stop: Instance[] = [];
    for (const instance of this.context.stack.instances) {
      const status = this.status(instance.name);
      const wanted = shouldRun(instance, now);
      if (wanted === "yes" && !isUp(status)) start.push(instance);
      if (wanted === "no" && isUp(status) && instance.scaling.type === "time") stop.push(instance);
      if (wanted === "load")
        this.#log(
          `${instance.name}: load-based: left ${status} (galley instance start ${instance.name} starts it)`,
        );
    }
    if (stop.length > 0) await this.stop(stop.map((i) => i.name));
    if (start.length > 0) await this.start(start.map((i) => i.name));
    else await this.#drain();
  }

  /** `galley stack down`: stops every instance that runs. */
  async down(): Promise<void> {
    // setup_failed and connection_lost instances have hosts too
    const running = this.context.stack.instances.filter(
      (i) => !["stopped", "terminated"].includes(this.status(i.name)),
    );
    if (running.length > 0) await this.stop(running.map((i) => i.name));
  }

  /** Starts instances: their hosts, then setup and deploy on each, online, then configure everywhere. */
  async start(names: readonly string[]): Promise<void> {
    const instances = names
      .map((name) => this.instance(name))
      .filter((i) => this.status(i.name) !== "online");
    if (instances.length === 0) return this.#drain();
    for (const instance of instances) this.#status(instance.name, "requested", "start requested");
    for (const instance of instances) this.#status(instance.name, "booting", "making its host");
    const hosts = await provision(this.context, instances, (line) => this.#log(line));
    const ready: Instance[] = [];
    for (const instance of instances) {
      const host = hosts.get(instance.name)!;
      if (!host.ok) {
        this.#status(instance.name, "setup_failed", `its host did not start: ${host.error}`);
        continue;
      }
      this.context.store.upsertInstance({
        stack: this.context.stack.name,
        name: instance.name,
        layers: instance.layers,
        provider: instance.provider.type,
        address: host.address,
        hostname: instance.name,
      });
      this.#status(instance.name, "running_setup", "host up: running setup");
      ready.push(instance);
    }
    // each instance goes its own way through setup and deploy; each that comes online asks for a configure
    await Promise.all(ready.map((instance) => this.#bringOnline(instance)));
    await this.#drain();
  }

  /** Stops instances: shutdown recipes (with a timeout), the host stops, configure on the rest. */
  async stop(names: readonly string[]): Promise<void> {
    const instances = names.map((name) => this.instance(name));
    const reachable = instances.filter((i) => this.status(i.name) === "online");
    for (const instance of instances)
      this.#status(instance.name, "stopping", "stop requested: running shutdown");
    let released = false;
    if (reachable.length > 0) {
      const { state, version } = this.snapshot();
      // the longest shutdown_timeout of the layers concerned
      const layers = this.context.stack.layers.filter((l) =>
        reachable.some((i) => i.layers.includes(l.name)),
      );
      const timeoutMs =
        this.#options.shutdownTimeoutMs ?? Math.max(...layers.map((l) => l.shutdown_timeout)) * 1000;
      let timer: NodeJS.Timeout | undefined;
      const shutdown = this.#event({ kind: "shutdown", instances: reachable, state, version });
      const timedOut = await Promise.race([
        shutdown.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        const why = `shutdown recipes still running after ${timeoutMs / 1000} s: stopping its host anyway`;
        for (const instance of instances) this.#status(instance.name, "shutting_down", why);
        await release(this.context, instances, (line) => this.#log(line));
        released = true;
      }
      // after a timeout the stopped hosts end the recipes' connections: the event ends connection_lost
      await shutdown;
    }
    if (!released) {
      for (const instance of instances)
        this.#status(instance.name, "shutting_down", "shutdown done: stopping its host");
      await release(this.context, instances, (line) => this.#log(line));
    }
    for (const instance of instances) this.#status(instance.name, "stopped", "host stopped");
    this.requestConfigure();
    await this.#drain();
  }

  /** `galley run EVENT`: one event on the online instances selected (configure: the whole stack by default). */
  async run(
    kind: Exclude<EventKind, "run-recipes">,
    selection: Selection,
    app?: string,
  ): Promise<EventSummary> {
    const instances = this.#select(selection);
    const { state, version } = this.snapshot();
    let apps: PreparedApp[] | undefined;
    if (kind === "deploy" || kind === "undeploy") {
      const chosen = this.context.stack.apps.filter((a) => app === undefined || a.name === app);
      if (app !== undefined && chosen.length === 0) throw unknown("app", app, this.context.stack.apps);
      apps =
        kind === "deploy"
          ? await prepareApps(this.context, chosen)
          : chosen.map((a) => ({ ...a, revision: "", archive: "", localArchive: "" }));
      // an app goes only where its layers are
      const layers = new Set(chosen.flatMap((a) => a.layers));
      return this.#event({
        kind,
        instances: instances.filter((i) => i.layers.some((l) => layers.has(l))),
        state,
        version,
        apps,
        args: { app, ...selection },
      });
    }
    return this.#event({
      kind,
      instances,
      state,
      version,
      supersedable: kind === "configure",
      args: selection,
    });
  }

  /** `galley run-recipes`: named recipes on the online instances selected, with r.stack. */
  async runRecipes(recipes: readonly string[], selection: Selection): Promise<EventSummary> {
    const { state, version } = this.snapshot();
    return this.#event({
      kind: "run-recipes",
      instances: this.#select(selection),
      state,
      version,
      recipes,
      args: { recipes, ...selection },
    });
  }

  /** Queues a configure of every online instance with the state as it is now; runs when the runner is free. */
  requestConfigure(): void {
    if (!this.context.stack.instances.some((i) => this.status(i.name) === "online")) return;
    const { version } = this.snapshot();
    this.#queued.push(
      this.context.store.createEvent({
        stack: this.context.stack.name,
        kind: "configure",
        args: {},
        stateVersion: version,
      }),
    );
    this.#configuring ??= this.#configureLoop().finally(() => {
      this.#configuring = undefined;
    });
  }

  /** An instance of the stack file by name; an unknown name is an error listing them. */
  instance(name: string): Instance {
    const instance = this.context.stack.instances.find((i) => i.name === name);
    if (!instance) throw unknown("instance", name, this.context.stack.instances);
    return instance;
  }

  /** An instance's stored status. */
  status(name: string): InstanceStatus {
    return this.context.store.getInstance(this.context.stack.name, name)?.status ?? "stopped";
  }

  async #bringOnline(instance: Instance): Promise<void> {
    const setupState = this.snapshot();
    const setup = await this.#event({ kind: "setup", instances: [instance], ...setupState });
    if (!this.#settle(instance, setup.results.get(instance.name)!, "setup")) return;
    const apps = this.context.stack.apps.filter((a) => a.layers.some((l) => instance.layers.includes(l)));
    if (apps.length > 0) {
      let prepared: PreparedApp[];
      try {
        prepared = await prepareApps(this.context, apps);
      } catch (error) {
        this.#status(instance.name, "setup_failed", `deploy: ${(error as Error).message}`);
        throw error;
      }
      const deploy = await this.#event({
        kind: "deploy",
        instances: [instance],
        ...this.snapshot(),
        apps: prepared,
      });
      if (!this.#settle(instance, deploy.results.get(instance.name)!, "deploy")) return;
    }
    this.#status(instance.name, "online", "setup and deploy done");
    this.requestConfigure();
  }

  // after setup/deploy: false (and the status says why) unless the instance succeeded
  #settle(instance: Instance, result: InstanceResult, what: string): boolean {
    if (result.status === "succeeded") return true;
    const reason = result.note ?? `${what} ${result.status}`;
    this.#status(
      instance.name,
      result.status === "connection_lost" ? "connection_lost" : "setup_failed",
      `${what}: ${reason}`,
    );
    return false;
  }

  async #configureLoop(): Promise<void> {
    while (this.#queued.length > 0) {
      const newest = this.#queued.pop()!;
      for (const older of this.#queued.splice(0)) {
        this.context.store.startEvent(older.id);
        const record = this.context.store.finishEvent(older.id, "superseded");
        this.#summary({ event: record, results: new Map() });
      }
      const { state, version } = this.snapshot();
      const online = this.context.stack.instances.filter((i) => this.status(i.name) === "online");
      await this.#event({
        kind: "configure",
        instances: online,
        state,
        version: newest.stateVersion ?? version,
        supersedable: true,
        queued: newest,
      });
    }
  }

  /** Resolves once no configure is queued or running: every command awaits it before it reports. */
  idle(): Promise<void> {
    return this.#drain();
  }

  async #drain(): Promise<void> {
    while (this.#configuring) await this.#configuring;
  }

  async #event(options: Omit<Parameters<typeof runEvent>[0], "context">): Promise<EventSummary> {
    const summary = await runEvent({
      ...options,
      context: this.context,
      ...(this.#options.forks ? { forks: this.#options.forks } : {}),
      waitMs: this.#options.waitMs,
      signal: this.#options.signal,
      onPhase: (instance, phase) => this.#options.onPhase?.(options.kind, instance, phase),
    });
    // an instance that went away during an event is no longer online: the others hear of it
    let lost = false;
    for (const [name, result] of summary.results) {
      if (result.status === "connection_lost" && this.status(name) === "online") {
        this.#status(name, "connection_lost", `${options.kind}: ${result.note ?? "the connection was lost"}`);
        lost = true;
      }
    }
    this.#summary(summary);
    if (lost) this.requestConfigure();
    return summary;
  }

  #summary(summary: EventSummary): void {
    this.events.push(summary);
    this.#options.onEvent?.(summary);
  }

  #select(selection: Selection): Instance[] {
    const { stack } = this.context;
    if (selection.layer !== undefined && !stack.layers.some((l) => l.name === selection.layer))
      throw unknown("layer", selection.layer, stack.layers);
    if (selection.instance !== undefined) {
      const instance = this.instance(selection.instance);
      const status = this.status(instance.name);
      if (status !== "online") {
        throw new GalleyError("STACK_INVALID", `instance ${instance.name} is ${status}, not online`, {
          hint: `start it first: galley instance start ${instance.name} --stack ${this.context.file}`,
        });
      }
      return [instance];
    }
    return stack.instances.filter(
      (i) =>
        this.status(i.name) === "online" &&
        (selection.layer === undefined || i.layers.includes(selection.layer)),
    );
  }

  #status(name: string, to: InstanceStatus, reason: string): void {
    const moved = this.context.store.setInstanceStatus(this.context.stack.name, name, to, reason);
    if (to === "setup_failed") this.failedStarts.push({ instance: name, reason });
    if (moved) this.#options.onStatus?.(name, to, reason);
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  // the stack as applied, and a record per instance of the stack file
  #sync(): void {
    const { store, stack } = this.context;
    store.transaction(() => {
      store.saveStack(stack.name, stack);
      for (const instance of stack.instances) {
        const existing = store.getInstance(stack.name, instance.name);
        store.upsertInstance({
          stack: stack.name,
          name: instance.name,
          layers: instance.layers,
          provider: instance.provider.type,
          address: existing?.address,
          hostname: instance.name,
        });
      }
    });
  }
}

function isUp(status: InstanceStatus): boolean {
  return status === "online" || status === "running_setup" || status === "booting" || status === "requested";
}

function unknown(kind: string, name: string, known: readonly { name: string }[]): GalleyError {
  return new GalleyError("STACK_INVALID", `the stack has no ${kind} "${name}"`, {
    hint: known.length
      ? `its ${kind}s: ${known.map((k) => k.name).join(", ")}`
      : `the stack file names no ${kind}`,
  });
}
