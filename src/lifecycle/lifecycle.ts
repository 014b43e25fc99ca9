import { GalleyError, isGalleyError } from "../core/errors.ts";
import { currentSecrets } from "../core/secrets.ts";
import { scrubbedJson } from "../store/codec.ts";
import type { HostPhase } from "../fleet/push.ts";
import type { SshTarget } from "../hosts/target.ts";
import { type Instance, instanceTransport } from "../stacks/schema.ts";
import { buildStackState, type StackState } from "../stacks/state.ts";
import type { EventKind, EventRecord, InstanceStatus } from "../store/store.ts";
import type { PreparedApp } from "./apps.ts";
import type { StackContext } from "./context.ts";
import { type InstanceResult, runEvent } from "./events.ts";
import { pinnedApps } from "./pins.ts";
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
  /** a host's phase in an event (`event`: the event's id, e.g. for its feed entries) */
  onPhase?: (kind: EventKind, instance: string, phase: HostPhase, event: number) => void;
  /** an instance changed status */
  onStatus?: (instance: string, status: InstanceStatus, reason: string) => void;
  /** an event finished */
  onEvent?: (summary: EventSummary) => void;
  /** an event is recorded and starts */
  onEventStarted?: ((event: EventRecord) => void) | undefined;
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

  private constructor(context: StackContext, options: LifecycleOptions) {
    this.context = context;
    this.#options = options;
  }

  /** The lifecycle of an opened stack; records the stack as applied and an instance per instance of its file. */
  static async open(context: StackContext, options: LifecycleOptions = {}): Promise<Lifecycle> {
    const lifecycle = new Lifecycle(context, options);
    await lifecycle.#sync();
    return lifecycle;
  }

  /** The current stack state and its version: a new version only when the state changed. */
  async snapshot(): Promise<{ state: StackState; version: number }> {
    const { store, stack } = this.context;
    const records = await store.listInstances(stack.name);
    const state = buildStackState(
      stack,
      records.map((r) => ({
        name: r.name,
        status: r.status,
        address: r.address,
        inService: r.inService,
        weight: r.weight,
      })),
    );
    const latest = await store.latestState(stack.name);
    // the store keeps the state scrubbed of secrets (a stack's secrets: files): compare it so
    if (latest && JSON.stringify(latest.state) === scrubbedJson(state, currentSecrets()))
      return { state, version: latest.version };
    return { state, version: await store.nextStateVersion(stack.name, state) };
  }

  /** `galley stack up`: starts what should run (24/7, and time-based inside their hours); stops time-based ones outside. */
  async up(now = new Date()): Promise<void> {
    const start: Instance[] = [];
    const stop: Instance[] = [];
    for (const instance of this.context.stack.instances) {
      const status = await this.status(instance.name);
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
    const running: Instance[] = [];
    for (const i of this.context.stack.instances)
      if (!["stopped", "terminated"].includes(await this.status(i.name))) running.push(i);
    if (running.length > 0) await this.stop(running.map((i) => i.name));
  }

  /** Starts instances: their hosts, then setup and deploy on each, online, then configure everywhere. */
  async start(names: readonly string[]): Promise<void> {
    const instances: Instance[] = [];
    for (const i of names.map((name) => this.instance(name)))
      if ((await this.status(i.name)) !== "online") instances.push(i);
    if (instances.length === 0) return this.#drain();
    for (const instance of instances) await this.#status(instance.name, "requested", "start requested");
    for (const instance of instances) await this.#status(instance.name, "booting", "making its host");
    const hosts = await provision(this.context, instances, (line) => this.#log(line));
    const ready: { instance: Instance; target: SshTarget }[] = [];
    for (const instance of instances) {
      const host = hosts.get(instance.name)!;
      if (!host.ok) {
        await this.#status(instance.name, "setup_failed", `its host did not start: ${host.error}`);
        continue;
      }
      await this.context.store.upsertInstance({
        stack: this.context.stack.name,
        name: instance.name,
        layers: instance.layers,
        provider: instance.provider.type,
        address: host.address,
        hostname: instance.name,
      });
      await this.#status(instance.name, "running_setup", "host up: running setup");
      ready.push({ instance, target: host.target });
    }
    // each instance goes its own way through setup and deploy; each that comes online asks for a configure
    await Promise.all(ready.map(({ instance, target }) => this.#bringOnline(instance, target)));
    await this.#drain();
  }

  /** Stops instances: shutdown recipes (with a timeout), the host stops, configure on the rest. */
  async stop(names: readonly string[]): Promise<void> {
    const instances = names.map((name) => this.instance(name));
    const reachable: Instance[] = [];
    for (const i of instances) if ((await this.status(i.name)) === "online") reachable.push(i);
    for (const instance of instances)
      await this.#status(instance.name, "stopping", "stop requested: running shutdown");
    let released = false;
    if (reachable.length > 0) {
      const { state, version } = await this.snapshot();
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
        for (const instance of instances) await this.#status(instance.name, "shutting_down", why);
        await release(this.context, instances, (line) => this.#log(line));
        released = true;
      }
      // after a timeout the stopped hosts end the recipes' connections: the event ends connection_lost
      await shutdown;
    }
    if (!released) {
      for (const instance of instances)
        await this.#status(instance.name, "shutting_down", "shutdown done: stopping its host");
      await release(this.context, instances, (line) => this.#log(line));
    }
    for (const instance of instances) await this.#status(instance.name, "stopped", "host stopped");
    await this.requestConfigure();
    await this.#drain();
  }

  /** `galley run EVENT`: one event on the online instances selected (configure: the whole stack by default). */
  async run(
    kind: Exclude<EventKind, "run-recipes">,
    selection: Selection,
    app?: string,
  ): Promise<EventSummary> {
    const instances = await this.#select(selection);
    const { state, version } = await this.snapshot();
    let apps: PreparedApp[] | undefined;
    if (kind === "deploy" || kind === "undeploy") {
      const chosen = this.context.stack.apps.filter((a) => app === undefined || a.name === app);
      if (app !== undefined && chosen.length === 0) throw unknown("app", app, this.context.stack.apps);
      apps =
        kind === "deploy"
          ? await pinnedApps(this.context, chosen, (line) => this.#log(line))
          : // the stack file's release settings are not a release target: undeploy makes none
            chosen.map(({ release: _, ...a }) => ({ ...a, revision: "", archive: "", localArchive: "" }));
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
    const { state, version } = await this.snapshot();
    return this.#event({
      kind: "run-recipes",
      instances: await this.#select(selection),
      state,
      version,
      recipes,
      args: { recipes, ...selection },
    });
  }

  /** Queues a configure of every online instance with the state as it is now; runs when the runner is free. */
  async requestConfigure(): Promise<void> {
    const statuses = await this.context.store.listInstances(this.context.stack.name);
    if (!statuses.some((i) => i.status === "online" && this.#declared(i.name))) return;
    const { version } = await this.snapshot();
    this.#queued.push(
      await this.context.store.createEvent({
        stack: this.context.stack.name,
        kind: "configure",
        args: {},
        stateVersion: version,
      }),
    );
    this.#kick();
  }

  // one configure loop at a time per lifecycle; a request that lands as a loop ends starts the next
  #kick(): void {
    this.#configuring ??= this.#configureLoop().finally(() => {
      this.#configuring = undefined;
      if (this.#queued.length > 0) this.#kick();
    });
  }

  /** An instance of the stack file by name; an unknown name is an error listing them. */
  instance(name: string): Instance {
    const instance = this.context.stack.instances.find((i) => i.name === name);
    if (!instance) throw unknown("instance", name, this.context.stack.instances);
    return instance;
  }

  /** An instance's stored status. */
  async status(name: string): Promise<InstanceStatus> {
    return (await this.context.store.getInstance(this.context.stack.name, name))?.status ?? "stopped";
  }

  // an instance of the stack file (the store may still hold ones the file no longer names)
  #declared(name: string): boolean {
    return this.context.stack.instances.some((i) => i.name === name);
  }

  async #bringOnline(instance: Instance, target: SshTarget): Promise<void> {
    if (instanceTransport(this.context.stack, instance) === "agent") {
      try {
        const { setupAgentInstance } = await import("./agent-setup.ts");
        await setupAgentInstance(this.context, instance, target, {
          log: (line) => this.#log(line),
          signal: this.#options.signal,
        });
      } catch (error) {
        const why = isGalleyError(error)
          ? `${error.message}${error.hint ? ` (${error.hint})` : ""}`
          : String(error);
        await this.#status(instance.name, "setup_failed", `its agent: ${currentSecrets().scrub(why)}`);
        return;
      }
    }
    const setupState = await this.snapshot();
    const setup = await this.#event({ kind: "setup", instances: [instance], ...setupState });
    if (!(await this.#settle(instance, setup.results.get(instance.name)!, "setup"))) return;
    const apps = this.context.stack.apps.filter((a) => a.layers.some((l) => instance.layers.includes(l)));
    if (apps.length > 0) {
      let prepared: PreparedApp[];
      try {
        prepared = await pinnedApps(this.context, apps, (line) => this.#log(line));
      } catch (error) {
        await this.#status(instance.name, "setup_failed", `deploy: ${(error as Error).message}`);
        throw error;
      }
      if (prepared.length > 0) {
        const deploy = await this.#event({
          kind: "deploy",
          instances: [instance],
          ...(await this.snapshot()),
          apps: prepared,
        });
        if (!(await this.#settle(instance, deploy.results.get(instance.name)!, "deploy"))) return;
      }
    }
    await this.#status(instance.name, "online", "setup and deploy done");
    await this.requestConfigure();
  }

  // after setup/deploy: false (and the status says why) unless the instance succeeded
  async #settle(instance: Instance, result: InstanceResult, what: string): Promise<boolean> {
    if (result.status === "succeeded") return true;
    const reason = result.note ?? `${what} ${result.status}`;
    await this.#status(
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
        await this.context.store.startEvent(older.id);
        const record = await this.context.store.finishEvent(older.id, "superseded");
        this.#summary({ event: record, results: new Map() });
      }
      const { state, version } = await this.snapshot();
      const online = await this.#online();
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
    // runEvent reports the event's record before any host's phase: phases name their event
    let event = options.queued?.id ?? 0;
    const summary = await runEvent({
      ...options,
      context: this.context,
      ...(this.#options.forks ? { forks: this.#options.forks } : {}),
      waitMs: this.#options.waitMs,
      signal: this.#options.signal,
      onPhase: (instance, phase) => this.#options.onPhase?.(options.kind, instance, phase, event),
      onStarted: (record) => {
        event = record.id;
        this.#options.onEventStarted?.(record);
      },
    });
    // an instance that went away during an event is no longer online: the others hear of it
    let lost = false;
    for (const [name, result] of summary.results) {
      if (result.status === "connection_lost" && (await this.status(name)) === "online") {
        await this.#status(
          name,
          "connection_lost",
          `${options.kind}: ${result.note ?? "the connection was lost"}`,
        );
        lost = true;
      }
    }
    this.#summary(summary);
    if (lost) await this.requestConfigure();
    return summary;
  }

  #summary(summary: EventSummary): void {
    this.events.push(summary);
    this.#options.onEvent?.(summary);
  }

  // the stack file's instances that are online, in its order
  async #online(): Promise<Instance[]> {
    const records = await this.context.store.listInstances(this.context.stack.name);
    const online = new Set(records.filter((r) => r.status === "online").map((r) => r.name));
    return this.context.stack.instances.filter((i) => online.has(i.name));
  }

  async #select(selection: Selection): Promise<Instance[]> {
    const { stack } = this.context;
    if (selection.layer !== undefined && !stack.layers.some((l) => l.name === selection.layer))
      throw unknown("layer", selection.layer, stack.layers);
    if (selection.instance !== undefined) {
      const instance = this.instance(selection.instance);
      const status = await this.status(instance.name);
      if (status !== "online") {
        throw new GalleyError("STACK_INVALID", `instance ${instance.name} is ${status}, not online`, {
          hint: `start it first: galley instance start ${instance.name} --stack ${this.context.file}`,
        });
      }
      return [instance];
    }
    return (await this.#online()).filter(
      (i) => selection.layer === undefined || i.layers.includes(selection.layer),
    );
  }

  async #status(name: string, to: InstanceStatus, reason: string): Promise<void> {
    const moved = await this.context.store.setInstanceStatus(this.context.stack.name, name, to, reason);
    if (to === "setup_failed") this.failedStarts.push({ instance: name, reason });
    if (moved) this.#options.onStatus?.(name, to, reason);
  }

  #log(line: string): void {
    this.#options.log?.(line);
  }

  // the stack as applied, and a record per instance of the stack file
  async #sync(): Promise<void> {
    const { store, stack } = this.context;
    await store.transaction(async (tx) => {
      await tx.saveStack(stack.name, stack);
      for (const instance of stack.instances) {
        const existing = await tx.getInstance(stack.name, instance.name);
        await tx.upsertInstance({
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
