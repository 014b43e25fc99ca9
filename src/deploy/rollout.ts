import * as path from "node:path";
import { errorMessage, GalleyError } from "../core/errors.ts";
import type { PreparedApp } from "../lifecycle/apps.ts";
import { type DeployPhase, type EventOptions, type InstanceResult, runEvent } from "../lifecycle/events.ts";
import type { Lifecycle } from "../lifecycle/lifecycle.ts";
import { releaseRecipes, releaseTarget } from "../lifecycle/releases.ts";

import type { App, Instance } from "../stacks/schema.ts";
import type { DeploymentRecord, DeploymentStep, EventKind } from "../store/store.ts";
import { equalWeight } from "./ab.ts";
import { type BatchDeadline, batchDeadline, defaultDeadlineMs } from "./deadline.ts";
import { checkHealth, type HealthCheckSpec } from "./health.ts";
import type { InstanceConnections } from "./hosts.ts";
import { loadBalancers } from "./lb/index.ts";
import type { RolloutPlan } from "./strategies/index.ts";
import type { DeployRequest, DeployStepPhase } from "./request.ts";

// One deployment's execution (used by src/deploy/controller.ts): the plan's batches, each instance's
// steps recorded in the store, the failures and the way back (revert, rollback of what it switched).

export interface Outcome {
  status: "succeeded" | "failed" | "rolled_back" | "interrupted";
  note?: string;
}

/** One deployment's execution: the plan's batches, the steps, the failures, the way back. */
export class Rollout {
  readonly #request: DeployRequest;
  readonly #lifecycle: Lifecycle;
  readonly #connections: InstanceConnections;
  readonly #app: App;
  readonly #instances: Map<string, Instance>;
  readonly #record: DeploymentRecord;
  readonly #deploying: PreparedApp;
  /** each instance's release before this deployment (a folder name), when it had one */
  readonly #previous = new Map<string, string | undefined>();
  readonly #failed = new Map<string, string>();
  /** instances this deployment switched to its release (and did not put back yet), in order */
  readonly #switched: string[] = [];
  /** whether this deployment switched any instance at all (then a failure is a rollback) */
  #everSwitched = false;
  #batch = 0;
  /** the current batch's progress deadline: its runs stop on its signal */
  #deadline: BatchDeadline | undefined;

  constructor(
    request: DeployRequest,
    lifecycle: Lifecycle,
    connections: InstanceConnections,
    app: App,
    instances: Instance[],
    record: DeploymentRecord,
    deploying: PreparedApp,
  ) {
    this.#request = request;
    this.#lifecycle = lifecycle;
    this.#connections = connections;
    this.#app = app;
    this.#instances = new Map(instances.map((i) => [i.name, i]));
    this.#record = record;
    this.#deploying = deploying;
  }

  /** instances that failed before a resume: they count against --max-fail */
  carryFailures(failed: ReadonlyMap<string, string>): void {
    for (const [name, why] of failed) this.#failed.set(name, why);
  }

  async execute(plan: RolloutPlan): Promise<Outcome> {
    await this.#readPrevious([...this.#instances.keys()]);
    const drain = plan.drain && this.#app.load_balancer !== undefined;
    try {
      if (plan.prepareFirst) {
        this.#startDeadline("the prepare of every instance");
        await this.#prepare([...this.#instances.keys()]);
        const late = this.#endDeadline();
        if (late) return { status: "failed", note: `${late}: nothing was switched` };
        if (this.#failed.size > plan.maxFail || (plan.allOrNothing && this.#failed.size > 0))
          return { status: "failed", note: `prepare failed on ${this.#failedText()}: nothing was switched` };
      }
      for (const [index, batch] of plan.batches.entries()) {
        this.#batch = index;
        this.#request.signal?.throwIfAborted();
        const live = batch.filter((name) => !this.#failed.has(name));
        if (live.length === 0) continue;
        this.#request.log?.(`batch ${index + 1} of ${plan.batches.length}: ${live.join(", ")}`);
        this.#startDeadline(`batch ${index + 1} of ${plan.batches.length} (${live.join(", ")})`);
        if (drain) await this.#drain(live);
        try {
          if (!plan.prepareFirst) await this.#prepare(live);
          const ready = live.filter((name) => !this.#failed.has(name));
          if (ready.length > 0 && !(await this.#migrate(ready[0]!))) {
            return { status: "failed", note: `the migration failed on ${ready[0]}: nothing was switched` };
          }
          const switched = await this.#switch(ready);
          await this.#health(switched);
          // not drained (cutover), but behind a load balancer: deployed once it reports the instance up
          if (!drain && this.#app.load_balancer)
            await this.#service(
              switched.filter((name) => !this.#failed.has(name)),
              true,
              { configure: false },
            );
          // an instance that failed its gate goes back to its release at once, still out of service
          const unhealthy = switched.filter((name) => this.#failed.has(name));
          if (unhealthy.length > 0) await this.#revert(unhealthy);
        } finally {
          if (drain) await this.#undrain(live);
        }
        const late = this.#endDeadline();
        if (late || this.#failed.size > plan.maxFail || (plan.allOrNothing && this.#failed.size > 0)) {
          const back = this.#switched.filter((name) => !this.#failed.has(name));
          if (back.length > 0) {
            this.#request.log?.(`rolling back ${back.join(", ")}: ${late ?? `${this.#failedText()} failed`}`);
            if (drain) await this.#drain(back);
            try {
              await this.#revert(back);
            } finally {
              if (drain) await this.#undrain(back);
            }
          }
          return {
            status: this.#everSwitched ? "rolled_back" : "failed",
            note: late
              ? `${late}: stopped; every instance it switched is back on its release`
              : `${this.#failedText()} failed (--max-fail ${plan.maxFail}): every instance is back on its release`,
          };
        }
      }
    } catch (error) {
      if (this.#request.signal?.aborted) return { status: "interrupted", note: "interrupted" };
      throw error;
    } finally {
      this.#deadline?.clear();
    }
    if (this.#failed.size > 0)
      return {
        status: "succeeded",
        note: `${this.#failedText()} failed within --max-fail ${plan.maxFail} and kept its release`,
      };
    return { status: "succeeded" };
  }

  /**
   * The load balancer's weights (an A/B's split, or equal again at its end): the store, the lb
   * layer's configure, then the load balancer asked whether it reports them. When that fails, the
   * instances this deployment switched go back to their release.
   */
  async weigh(weights: Record<string, number>): Promise<Outcome> {
    const lb = this.#app.load_balancer;
    if (!lb) return { status: "succeeded" };
    const { context } = this.#lifecycle;
    for (const [name, weight] of Object.entries(weights))
      await context.store.setInstanceWeight(context.stack.name, name, weight);
    const configure = await this.#lifecycle.run("configure", { layer: lb.layer });
    const failed = [...configure.results.entries()].filter(([, r]) => r.status !== "succeeded");
    const driver = loadBalancers[lb.type as keyof typeof loadBalancers];
    const backend = lb.backend ?? this.#app.layers[0]!;
    const lbInstances = [...configure.results.keys()].map(
      (name) => context.stack.instances.find((i) => i.name === name)!,
    );
    let ok = true;
    for (const [name, weight] of Object.entries(weights)) {
      // every instance gets its step, even after one failed
      const set = await this.#step(name, "weight", async () => {
        if (failed.length > 0)
          return {
            ok: false,
            log: `the ${lb.layer} layer's configure failed on ${failed.map(([n]) => n).join(", ")}`,
          };
        const seen: string[] = [];
        for (const instance of lbInstances) {
          const { host } = await this.#connections.get(instance);
          const state = (await driver.states(host, backend, { socket: lb.socket })).get(name);
          seen.push(`${instance.name}: weight ${state?.weight ?? "unknown"}`);
          if (state?.weight !== weight)
            return { ok: false, log: `asked weight ${weight}; ${seen.join("; ")}` };
        }
        return { ok: true, log: `weight ${weight} (${seen.join("; ")})` };
      });
      ok = ok && set;
    }
    if (ok) return { status: "succeeded" };
    const back = this.#switched.filter((name) => !this.#failed.has(name));
    this.#request.log?.(
      `the load balancer's weights could not be set: ${back.join(", ") || "no instance"} back`,
    );
    for (const name of Object.keys(weights))
      await context.store.setInstanceWeight(context.stack.name, name, equalWeight);
    if (back.length > 0) {
      await this.#drain(back);
      try {
        await this.#revert(back);
      } finally {
        await this.#undrain(back);
      }
    }
    return {
      status: back.length > 0 ? "rolled_back" : "failed",
      note: "the load balancer's weights could not be set: every instance is back on its release, weights equal",
    };
  }

  /** what the current runs stop on: the batch's deadline (with the deployment's signal), or that signal */
  get #signal(): AbortSignal | undefined {
    return this.#deadline?.signal ?? this.#request.signal;
  }

  #startDeadline(what: string): void {
    this.#deadline?.clear();
    this.#deadline = batchDeadline(this.#request.signal, this.#request.deadlineMs ?? defaultDeadlineMs, what);
  }

  // the batch ended: what was late when its deadline fired
  #endDeadline(): string | undefined {
    const deadline = this.#deadline;
    this.#deadline = undefined;
    deadline?.clear();
    if (!deadline?.expired()) return undefined;
    const late = (deadline.signal.reason as Error).message;
    this.#request.log?.(`${late}: its runs were stopped`);
    return late;
  }

  #failedText(): string {
    return [...this.#failed.entries()].map(([name, why]) => `${name} (${why})`).join(", ");
  }

  async #step(
    instance: string,
    phase: DeployStepPhase,
    action: () => Promise<{ ok: boolean; log: string; release?: string }>,
  ): Promise<boolean> {
    const started = new Date().toISOString();
    const base = { deploymentId: this.#record.id, instance, batch: this.#batch, phase, startedAt: started };
    const running: DeploymentStep = { ...base, status: "running" };
    await this.#lifecycle.context.store.recordDeploymentStep(running);
    this.#request.onStep?.(running);
    let result: { ok: boolean; log: string; release?: string };
    try {
      result = await action();
    } catch (error) {
      result = { ok: false, log: errorMessage(error) };
    }
    const done: DeploymentStep = {
      ...base,
      status: result.ok ? "succeeded" : "failed",
      log: result.log,
      ...(result.release ? { release: result.release } : {}),
      finishedAt: new Date().toISOString(),
    };
    await this.#lifecycle.context.store.recordDeploymentStep(done);
    this.#request.onStep?.(done);
    return result.ok;
  }

  // which release each instance runs now: `readlink current` on it (none on a first deployment)
  async #readPrevious(names: string[]): Promise<void> {
    const target = this.#deploying.release!;
    await Promise.all(
      names.map(async (name) => {
        try {
          const { host } = await this.#connections.get(this.#instances.get(name)!);
          const result = await host.exec(["readlink", "--", target.current]);
          const folder = result.exitCode === 0 ? path.posix.basename(result.stdout.trim()) : undefined;
          if (folder !== target.id) return this.#previous.set(name, folder || undefined);
          // a resumed deployment that switched it already: the release before, from revisions.log
          const log = await host.exec([
            "sh",
            "-c",
            'tail -n 100 -- "$1" 2>/dev/null',
            "sh",
            path.posix.join(target.dir, "revisions.log"),
          ]);
          const ids = log.stdout
            .split("\n")
            .map((line) => line.split(" ")[1])
            .filter((id): id is string => id !== undefined && /^\d+$/.test(id) && id !== target.id);
          this.#previous.set(name, ids.at(-1));
        } catch {
          this.#previous.set(name, undefined);
        }
      }),
    );
  }

  // the request's onPhase for one runEvent: each host's phase with the event's id
  #progress(kind: EventKind): Pick<EventOptions, "onStarted" | "onPhase"> {
    const onPhase = this.#request.onPhase;
    if (onPhase === undefined) return {};
    let event = 0;
    return {
      onStarted: (record) => {
        event = record.id;
      },
      onPhase: (instance, phase) => onPhase(kind, instance, phase, event),
    };
  }

  async #event(
    names: string[],
    phase: DeployPhase,
    app: PreparedApp,
    signal = this.#signal,
  ): Promise<Map<string, InstanceResult>> {
    const { state, version } = await this.#lifecycle.snapshot();
    const summary = await runEvent({
      context: this.#lifecycle.context,
      kind: "deploy",
      instances: names.map((n) => this.#instances.get(n)!),
      state,
      version,
      apps: [app],
      phase,
      attributes:
        Object.keys(this.#record.attributes).length > 0
          ? { label: `deployment #${this.#record.id}`, values: this.#record.attributes }
          : undefined,
      args: { app: this.#app.name, deployment: this.#record.id, phase },
      ...(this.#request.forks ? { forks: this.#request.forks } : {}),
      waitMs: this.#request.waitMs,
      signal,
      ...this.#progress("deploy"),
    });
    if (summary.event.bundle && !this.#record.bundle) {
      this.#record.bundle = summary.event.bundle;
      await this.#lifecycle.context.store.setDeploymentBundle(this.#record.id, summary.event.bundle);
    }
    return summary.results;
  }

  async #prepare(all: string[]): Promise<void> {
    // a rollback only switches where its release is still whole on the instance
    const onDisk = this.#request.rollbackOf ? await this.#releasesOnDisk(all) : new Set<string>();
    await Promise.all(
      [...onDisk].map((name) =>
        this.#step(name, "prepare", async () => ({
          ok: true,
          log: `release ${this.#deploying.release!.id} is on the instance (REVISION ${this.#deploying.revision.slice(0, 12)}): nothing to prepare`,
        })),
      ),
    );
    const names = all.filter((name) => !onDisk.has(name));
    if (names.length === 0) return;
    const results = await this.#event(names, "prepare", this.#deploying);
    // the before_migrate and before_symlink hooks given as recipes: a run of their own, right after
    const prepared = names.filter((name) => results.get(name)!.status === "succeeded");
    const hooks = await this.#recipeHooks(prepared, ["before_migrate", "before_symlink"]);
    await Promise.all(
      names.map((name) =>
        this.#step(name, "prepare", async () => {
          const result = results.get(name)!;
          const hook = hooks.get(name);
          const ok = result.status === "succeeded" && (hook === undefined || hook.status === "succeeded");
          if (!ok)
            this.#failed.set(
              name,
              result.status === "succeeded" ? "a hook failed" : `prepare ${result.status}`,
            );
          return { ok, log: [resultLog(result), ...(hook ? [`hooks: ${resultLog(hook)}`] : [])].join("\n") };
        }),
      ),
    );
  }

  // the instances whose release folder is there and whole: its REVISION says this revision
  async #releasesOnDisk(names: string[]): Promise<Set<string>> {
    const target = this.#deploying.release!;
    const found = new Set<string>();
    await Promise.all(
      names.map(async (name) => {
        try {
          const { host } = await this.#connections.get(this.#instances.get(name)!);
          const revision = await host.readFile(path.posix.join(target.path, "REVISION"));
          if (revision && new TextDecoder().decode(revision).trim() === this.#deploying.revision)
            found.add(name);
        } catch {
          // unreadable or unreachable: prepare it as usual, and fail there if it must
        }
      }),
    );
    return found;
  }

  /**
   * The app's hooks of these names that are recipes, in that order, as one run on `names` with
   * the release as r.stack.deploying; undefined results when there is none to run.
   */
  async #recipeHooks(
    names: string[],
    which: ("before_migrate" | "before_symlink" | "before_restart" | "after_restart")[],
  ): Promise<Map<string, InstanceResult>> {
    const hooks = this.#deploying.release?.settings.hooks ?? {};
    const recipes = which.flatMap((h) => {
      const hook = hooks[h];
      return hook !== undefined && typeof hook !== "string" ? hook.recipes : [];
    });
    if (recipes.length === 0 || names.length === 0) return new Map();
    const { state, version } = await this.#lifecycle.snapshot();
    const summary = await runEvent({
      context: this.#lifecycle.context,
      kind: "run-recipes",
      recipes,
      instances: names.map((n) => this.#instances.get(n)!),
      state,
      version,
      apps: [this.#deploying],
      args: { app: this.#app.name, deployment: this.#record.id, hooks: which },
      waitMs: this.#request.waitMs,
      signal: this.#signal,
      ...this.#progress("run-recipes"),
    });
    return summary.results;
  }

  // the app's migration, once per deployment, before any instance switches: claimed in the store
  async #migrate(name: string): Promise<boolean> {
    const store = this.#lifecycle.context.store;
    const migrate = this.#app.release?.migrate;
    if (migrate === undefined || this.#request.rollbackOf || this.#request.reuse) return true;
    const claim = await store.claimMigration(this.#record.id, name);
    if (claim === "done" || claim === "none") return true;
    if (claim === "running") {
      throw new GalleyError(
        "DEPLOY_FAILED",
        `deployment #${this.#record.id}: its migration is marked running by another process`,
        { hint: `galley deployment show ${this.#record.id}` },
      );
    }
    this.#request.log?.(`migrating on ${name} (once for the whole deployment)`);
    const ok = await this.#step(name, "migrate", async () => {
      const instance = this.#instances.get(name)!;
      // a command: Galley's migrate recipe (run in the release, marker when done); else the app's recipes
      const recipes = typeof migrate === "string" ? [releaseRecipes.migrate] : migrate.recipes;
      const { state, version } = await this.#lifecycle.snapshot();
      const summary = await runEvent({
        context: this.#lifecycle.context,
        kind: "run-recipes",
        recipes,
        instances: [instance],
        state,
        version,
        apps: [this.#deploying],
        args: { app: this.#app.name, deployment: this.#record.id, phase: "migrate" },
        waitMs: this.#request.waitMs,
        signal: this.#signal,
        ...this.#progress("run-recipes"),
      });
      const result = summary.results.get(name)!;
      return { ok: result.status === "succeeded", log: resultLog(result) };
    });
    await store.finishMigration(this.#record.id, ok ? "done" : "failed");
    if (!ok) this.#failed.set(name, "migration failed");
    return ok;
  }

  async #switch(names: string[]): Promise<string[]> {
    if (names.length === 0) return [];
    // recipe hooks around the switch: before_restart before it (the link and the restart are one
    // run), after_restart after it
    const before = await this.#recipeHooks(names, ["before_restart"]);
    const switching = names.filter((n) => (before.get(n)?.status ?? "succeeded") === "succeeded");
    const switchResults = await this.#event(switching, "switch", this.#deploying);
    const after = await this.#recipeHooks(
      switching.filter((n) => switchResults.get(n)?.status === "succeeded"),
      ["after_restart"],
    );
    const results = new Map<string, InstanceResult>();
    for (const name of names) {
      const failedHook = [before.get(name), after.get(name)].find(
        (r) => r !== undefined && r.status !== "succeeded",
      );
      results.set(name, failedHook ?? switchResults.get(name) ?? before.get(name)!);
    }
    const release = this.#deploying.release!.id;
    const switched: string[] = [];
    await Promise.all(
      names.map((name) =>
        this.#step(name, "switch", async () => {
          const result = results.get(name)!;
          const ok = result.status === "succeeded";
          if (ok) switched.push(name);
          else this.#failed.set(name, `switch ${result.status}`);
          return { ok, log: resultLog(result), ...(ok ? { release } : {}) };
        }),
      ),
    );
    // a failed switch may have half-happened (the link switched, the restart failed): it goes back too
    for (const name of names) if (!this.#switched.includes(name)) this.#switched.push(name);
    this.#everSwitched ||= names.length > 0;
    return names.filter((n) => switched.includes(n) || this.#failed.has(n));
  }

  async #health(names: string[]): Promise<void> {
    const spec = healthSpec(this.#app);
    if (!spec) return;
    await Promise.all(
      names
        .filter((name) => !this.#failed.has(name))
        .map((name) =>
          this.#step(name, "health", async () => {
            const instance = this.#instances.get(name)!;
            const address = await this.#connections.address(instance);
            const result = await checkHealth(spec, {
              address,
              host: async () => (await this.#connections.get(instance)).host,
              signal: this.#signal,
            });
            if (!result.ok) this.#failed.set(name, "health check failed");
            return { ok: result.ok, log: result.log.join("\n") };
          }),
        ),
    );
  }

  // back to the release each instance ran before this deployment (an instance without one is left as it is)
  async #revert(names: string[]): Promise<void> {
    const groups = new Map<string, string[]>();
    for (const name of names) {
      const previous = this.#previous.get(name);
      if (previous === undefined || !/^\d+$/.test(previous)) {
        await this.#step(name, "rollback", async () => ({
          ok: false,
          log: "no earlier release on this instance to go back to",
        }));
        continue;
      }
      groups.set(previous, [...(groups.get(previous) ?? []), name]);
    }
    for (const [previous, group] of groups) {
      const app = { ...this.#deploying, release: releaseTarget(this.#app, Number(previous))! };
      // going back is never stopped by a batch's deadline, only by the deployment's own signal
      const results = await this.#event(group, "switch", app, this.#request.signal);
      await Promise.all(
        group.map((name) =>
          this.#step(name, "rollback", async () => {
            const result = results.get(name)!;
            const ok = result.status === "succeeded";
            if (ok) this.#switched.splice(this.#switched.indexOf(name), 1);
            return { ok, log: resultLog(result), ...(ok ? { release: previous } : {}) };
          }),
        ),
      );
    }
  }

  async #drain(names: string[]): Promise<void> {
    await this.#service(names, false);
  }

  async #undrain(names: string[]): Promise<void> {
    await this.#service(names, true);
  }

  // in or out of the load balancer: the stack state says so, the lb layer's configure applies
  // it, and the load balancer itself is asked until it agrees (drained: no session left)
  async #service(names: string[], inService: boolean, options: { configure?: boolean } = {}): Promise<void> {
    if (names.length === 0) return;
    const lb = this.#app.load_balancer!;
    const { context } = this.#lifecycle;
    const phase: DeployStepPhase = inService ? "undrain" : "drain";
    let lbNames: string[];
    let lbFailed = false;
    if (options.configure === false) {
      // only ask: the load balancer's layer, its online instances
      const online = new Set(
        (await context.store.listInstances(context.stack.name))
          .filter((r) => r.status === "online")
          .map((r) => r.name),
      );
      lbNames = context.stack.instances
        .filter((i) => online.has(i.name) && i.layers.includes(lb.layer))
        .map((i) => i.name);
    } else {
      for (const name of names) await context.store.setInstanceService(context.stack.name, name, inService);
      const configure = await this.#lifecycle.run("configure", { layer: lb.layer });
      lbNames = [...configure.results.keys()];
      lbFailed = [...configure.results.values()].some((r) => r.status !== "succeeded");
    }
    const backend = lb.backend ?? this.#app.layers[0]!;
    const driver = loadBalancers[lb.type as keyof typeof loadBalancers];
    const timeoutMs = (inService ? 60 : lb.drain_timeout) * 1000;
    await Promise.all(
      names.map((name) =>
        this.#step(name, phase, async () => {
          if (lbFailed) return { ok: false, log: `the ${lb.layer} layer's configure failed` };
          // a host that went away will not come up: its state is set, the load balancer's checks keep it out
          if (inService && /connection_lost|unreachable/.test(this.#failed.get(name) ?? ""))
            return {
              ok: false,
              log: `${name} cannot be reached: back in service in the stack state, not waited for`,
            };
          const deadline = Date.now() + timeoutMs;
          let last = "";
          for (;;) {
            const seen: string[] = [];
            let agreed = lbNames.length > 0;
            for (const lbName of lbNames) {
              const instance = context.stack.instances.find((i) => i.name === lbName)!;
              const { host } = await this.#connections.get(instance);
              const state = (await driver.states(host, backend, { socket: lb.socket })).get(name);
              seen.push(
                `${lbName}: ${state ? `${state.status}, ${state.sessions} sessions` : "not a server"}`,
              );
              if (!state || !(inService ? state.up : state.drained)) agreed = false;
            }
            last = seen.join("; ");
            if (agreed) return { ok: true, log: last };
            if (Date.now() > deadline)
              return {
                ok: false,
                log: `not ${inService ? "up" : "drained"} after ${timeoutMs / 1000} s: ${last}`,
              };
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        }),
      ),
    );
  }
}

function healthSpec(app: App): HealthCheckSpec | undefined {
  const check = app.release?.health_check;
  if (!check) return undefined;
  return {
    ...(check.http ? { http: check.http } : {}),
    ...(check.command ? { command: check.command } : {}),
    timeout: check.timeout,
    retries: check.retries,
    interval: check.interval,
  };
}

function resultLog(result: InstanceResult): string {
  if (result.note) return result.note;
  const outcome = result.outcome;
  if (!outcome) return result.status;
  if (outcome.status === "skipped") return outcome.reason;
  if ("error" in outcome) return `${outcome.error.code}: ${outcome.error.message}`;
  const failed = outcome.report.resources.filter((r) => r.status === "failed");
  const s = outcome.report.summary;
  return [
    `${s.changed} changed, ${s.unchanged} unchanged, ${s.failed} failed`,
    ...failed.map((r) => `${r.id}: ${r.error?.message ?? "failed"}`),
  ].join("\n");
}
