import { fileURLToPath } from "node:url";
import { type FleetMember, type HostOutcome, type HostPhase, pushFleet } from "../fleet/push.ts";
import { type Instance, instanceTransport, type LifecycleEvent } from "../stacks/schema.ts";
import { type StackState, StackView } from "../stacks/state.ts";
import type { EventKind, EventRecord, OutcomeStatus } from "../store/store.ts";
import type { PreparedApp } from "./apps.ts";
import type { StackContext } from "./context.ts";
import { reach } from "./providers.ts";
import { releaseRecipes } from "./releases.ts";

// One lifecycle event on a set of instances: each runs its layers' recipes for the event (Galley's
// own first: packages at setup, app archives at deploy) with the stack state as r.stack, through
// the same fleet runner as galley push. Every event and per-instance outcome goes to the store.

const builtin = {
  packages: fileURLToPath(new URL("./recipes/packages.ts", import.meta.url)),
  archives: fileURLToPath(new URL("./recipes/app-archives.ts", import.meta.url)),
  ...releaseRecipes,
};

/**
 * Which part of a deploy an event runs, for apps whose releases Galley manages: `prepare` (ship,
 * unpack, link shared files, build, and the layers' deploy recipes), `switch` (the `current` link,
 * restart, hooks), or `all` (both, one after the other: an instance that starts, `galley run deploy`).
 */
export type DeployPhase = "all" | "prepare" | "switch";

/** One instance's part in an event, as the caller sees it. */
export interface InstanceResult {
  status: OutcomeStatus;
  outcome: HostOutcome | undefined;
  /** why there was nothing to run, or why it did not run */
  note?: string;
}

/** What running an event needs. */
export interface EventOptions {
  context: StackContext;
  kind: EventKind;
  instances: readonly Instance[];
  /** the stack state and its version every instance of this event receives */
  state: StackState;
  version: number;
  /** run-recipes: the recipes to run instead of the layers' */
  recipes?: readonly string[];
  /** deploy / undeploy (and a deployment's migrate recipes): the apps concerned */
  apps?: readonly PreparedApp[];
  /** deploy: which part of it (default all) */
  phase?: DeployPhase | undefined;
  /** attributes of this run at the `deployment` level (a deployment's --attrs) */
  attributes?: { label: string; values: Record<string, unknown> } | undefined;
  /** configure: instances not yet started are skipped once a newer stack state exists */
  supersedable?: boolean;
  forks?: number;
  args?: unknown;
  /** an event queued earlier (configure) to run now, instead of a new one */
  queued?: EventRecord;
  onPhase?: (instance: string, phase: HostPhase) => void;
  /** how long an instance waits for another run's lock on its host (default 600 s) */
  waitMs?: number | undefined;
  signal?: AbortSignal | undefined;
}

/** Runs one event and records it; the event's outcome and each instance's, in the instances' order. */
export async function runEvent(
  options: EventOptions,
): Promise<{ event: EventRecord; results: Map<string, InstanceResult> }> {
  const { context, kind } = options;
  const store = context.store;
  const stack = context.stack.name;
  const created =
    options.queued ??
    (await store.createEvent({ stack, kind, args: options.args ?? {}, stateVersion: options.version }));
  await store.startEvent(created.id);
  const results = new Map<string, InstanceResult>();
  const members: FleetMember[] = [];
  const superseded = async () => {
    const latest = (await store.latestState(stack))?.version ?? options.version;
    return latest > options.version
      ? `superseded: stack state ${latest} is newer than ${options.version}`
      : undefined;
  };
  // an instance that does not run at all: its outcome is final at once
  const settled = async (name: string, status: OutcomeStatus, note: string, log: string) => {
    const now = new Date().toISOString();
    results.set(name, { status, outcome: undefined, note });
    await store.recordInstanceOutcome({
      eventId: created.id,
      instance: name,
      status,
      stateVersion: options.version,
      log,
      startedAt: now,
      finishedAt: now,
    });
  };
  const runLists = new Map(options.instances.map((i) => [i.name, runListOf(options, i)]));
  const reachable = await reach(
    context,
    options.instances.filter((i) => runLists.get(i.name)!.length > 0),
  );
  for (const instance of options.instances) {
    const runList = runLists.get(instance.name)!;
    if (runList.length === 0) {
      await settled(
        instance.name,
        "succeeded",
        `no ${kind} recipes`,
        `no ${kind} recipes in layers ${instance.layers.join(", ")}`,
      );
      continue;
    }
    const reached = reachable.get(instance.name)!;
    if (!reached.ok) {
      await settled(instance.name, "connection_lost", reached.error, reached.error);
      continue;
    }
    // an agent instance converges itself: it gets the apps' archives first, and reads them where they land
    const agent = instanceTransport(context.stack, instance) === "agent";
    const shipped = agent ? (options.apps ?? []).filter((app) => app.localArchive !== "") : [];
    const deploying = agent
      ? (options.apps ?? []).map((app) =>
          app.localArchive === "" ? app : { ...app, localArchive: app.archive },
        )
      : (options.apps ?? []);
    members.push({
      name: instance.name,
      target: reached.target,
      ...(agent ? { agent: { stack, instance: instance.name } } : {}),
      ...(shipped.length > 0
        ? { files: shipped.map((app) => ({ local: app.localArchive, remote: app.archive })) }
        : {}),
      runList,
      attributes: [
        ...attributeLayers(context, instance),
        ...(options.attributes
          ? [
              {
                source: { level: "deployment" as const, label: options.attributes.label },
                values: options.attributes.values,
              },
            ]
          : []),
      ],
      stack: new StackView(options.state, instance.name, {
        event: kind as LifecycleEvent | "run-recipes",
        version: options.version,
        deploying,
      }),
      ...(options.supersedable ? { skip: superseded } : {}),
    });
  }
  const started = new Map<string, string>();
  // the event's cookbooks, resolved once: its bundle id goes with the event and every outcome
  let bundle: string | undefined;
  // "running" outcomes are written while hosts run; each host's final outcome is written after them
  const writes: Promise<void>[] = [];
  const { transports } = await import("../hosts/transports.ts");
  const outcomes =
    members.length === 0
      ? new Map<string, HostOutcome>()
      : await pushFleet({
          members,
          mode: "apply",
          forks: options.forks ?? Math.min(members.length, 50),
          compile: { runList: [], cookbooksDir: context.cookbooksDir, attributeFiles: [] },
          builtins: new Set(Object.values(builtin)),
          onResolved: (prepared) => {
            bundle = prepared.id;
          },
          waitMs: options.waitMs,
          command: `galley ${kind} event of stack ${stack}`,
          signal: options.signal,
          agents: context.agents,
          connect: (target, onAttempt) =>
            transports.ssh.connect(target, { onAttempt, signal: options.signal }),
          onPhase: (name, phase) => {
            if (phase.phase === "connecting" && !started.has(name)) {
              started.set(name, new Date().toISOString());
              const write = store.recordInstanceOutcome({
                eventId: created.id,
                instance: name,
                status: "running",
                stateVersion: options.version,
                ...(bundle ? { bundle } : {}),
                startedAt: started.get(name)!,
              });
              // awaited below; if the fleet run throws first, its error is the one reported
              write.catch(() => {});
              writes.push(write);
            }
            options.onPhase?.(name, phase);
          },
        });
  await Promise.all(writes);
  for (const [name, outcome] of outcomes) {
    const status = outcomeStatus(outcome);
    const now = new Date().toISOString();
    results.set(name, { status, outcome });
    await store.recordInstanceOutcome({
      eventId: created.id,
      instance: name,
      status,
      stateVersion: options.version,
      ...(bundle ? { bundle } : {}),
      ...("report" in outcome ? { report: outcome.report } : {}),
      log: outcomeLog(outcome),
      startedAt: started.get(name) ?? now,
      finishedAt: now,
    });
  }
  const ordered = new Map(options.instances.map((i) => [i.name, results.get(i.name)!]));
  const statuses = [...ordered.values()].map((r) => r.status);
  const eventStatus =
    statuses.length > 0 && statuses.every((s) => s === "superseded")
      ? "superseded"
      : statuses.some((s) => s === "failed" || s === "connection_lost")
        ? "failed"
        : "succeeded";
  const event = await store.finishEvent(created.id, eventStatus, bundle);
  return { event, results: ordered };
}

// Galley's own recipe first, then each of the instance's layers' recipes for the event, each once
function runListOf(options: EventOptions, instance: Instance): string[] {
  if (options.kind === "run-recipes") return [...(options.recipes ?? [])];
  const event = options.kind as LifecycleEvent;
  const items: string[] = [];
  for (const name of instance.layers) {
    const layer = options.context.stack.layers.find((l) => l.name === name);
    for (const recipe of layer?.recipes[event] ?? []) if (!items.includes(recipe)) items.push(recipe);
  }
  if (event === "setup") {
    const packages = instance.layers.some(
      (name) => (options.context.stack.layers.find((l) => l.name === name)?.packages.length ?? 0) > 0,
    );
    if (packages) items.unshift(builtin.packages);
  }
  if (event !== "deploy" || (options.apps?.length ?? 0) === 0) return items;
  // apps whose releases Galley makes: prepare before the layers' recipes, switch after them
  const released = options.apps!.some((app) => app.release !== undefined);
  const phase = options.phase ?? "all";
  if (released && phase === "switch") return [builtin.switch];
  if (!released && items.length === 0) return items;
  return [
    builtin.archives,
    ...(released ? [builtin.prepare] : []),
    ...items,
    ...(released && phase === "all" ? [builtin.switch] : []),
  ];
}

// the stack's attributes at the stack level, its layers' at the layer level, its own at the instance level
function attributeLayers(context: StackContext, instance: Instance): FleetMember["attributes"] {
  const { stack } = context;
  return [
    {
      source: { level: "stack", label: `stack ${stack.name}`, file: context.file },
      values: stack.attributes,
    },
    ...instance.layers.map((name) => ({
      source: { level: "layer" as const, label: `layer ${name}`, file: context.file },
      values: stack.layers.find((l) => l.name === name)?.attributes ?? {},
    })),
    {
      source: { level: "instance", label: `instance ${instance.name}`, file: context.file },
      values: instance.attributes,
    },
  ];
}

function outcomeStatus(outcome: HostOutcome): OutcomeStatus {
  if (outcome.status === "ok") return "succeeded";
  if (outcome.status === "unreachable") return "connection_lost";
  if (outcome.status === "skipped") return outcome.reason.startsWith("superseded") ? "superseded" : "failed";
  return "failed";
}

function outcomeLog(outcome: HostOutcome): string {
  if (outcome.status === "skipped") return outcome.reason;
  if ("error" in outcome)
    return `${outcome.error.code}: ${outcome.error.message}${outcome.error.hint ? `\nhint: ${outcome.error.hint}` : ""}`;
  const s = outcome.report.summary;
  return `${s.changed} changed, ${s.unchanged} unchanged, ${s.failed} failed`;
}
