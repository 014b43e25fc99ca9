import { rootStateDir, stateDirOf } from "../hosts/statedir.ts";
import type { Attributes } from "../core/attributes.ts";
import { type ConvergeEvent, converge } from "../core/converge.ts";
import { errorMessage, GalleyError, isGalleyError } from "../core/errors.ts";
import type { HeldLock, Host } from "../core/host.ts";
import { limit } from "../core/limit.ts";
import type { Report } from "../core/report.ts";
import { acquireRunLock, describeHolder } from "../core/runlock.ts";
import { currentSecrets, type Secrets, withSecrets } from "../core/secrets.ts";
import type { AttributeSource } from "../cookbooks/precedence.ts";
import type { PreparedCookbooks } from "../cookbooks/prepared.ts";
import type { CompiledRun, CompileRunListOptions } from "../cookbooks/solo.ts";
import type { SshTarget } from "../hosts/target.ts";
import type { StackView } from "../stacks/state.ts";
import type { AgentLink, AgentTarget } from "./agent-protocol.ts";

// One pipeline for every run: resolve the cookbooks once into a prepared set (its bundle id), then,
// per host, connect → facts → compile (from that set) → converge → report. Solo (`galley apply`,
// the local host), `galley push` and stack events all go through it; the fleet runner takes a plan
// of batches, each finished before the next starts.

/** The stages of a run, in order: `resolve` once per run, the others once per host. */
export const stages = ["resolve", "connect", "facts", "compile", "converge", "report"] as const;

/** One stage of a run. */
export type Stage = (typeof stages)[number];

/** A host reached over a connection: it is closed after the run and may be lost during it. */
export interface RemoteHost extends Host {
  /** how many reads the engine may keep in flight (a batching transport wants many) */
  readonly readConcurrency?: number;
  /** set once the connection dropped: every later call fails with it */
  readonly lost?: GalleyError | undefined;
  close(): Promise<void>;
}

/** An attribute layer a fleet run adds for one host (inventory groups and host, stack, layer, instance). */
export interface MemberAttributes {
  source: AttributeSource;
  values: Attributes;
}

/** One host of a fleet run: its name, how to reach it, its attributes, and what it runs. */
export interface FleetMember {
  name: string;
  target: SshTarget;
  attributes: readonly MemberAttributes[];
  /** this host's run list, instead of the run's */
  runList?: readonly string[] | undefined;
  /** the stack state seen from this host (r.stack) */
  stack?: StackView | undefined;
  /** managed by its own agent: the run sends it a converge job through `FleetRunOptions.agents`, no SSH */
  agent?: AgentTarget | undefined;
  /** files of this machine an agent host gets before its job, where its recipes read them (deployed app archives) */
  files?: readonly { local: string; remote: string }[] | undefined;
  /** asked just before the host starts: a reason not to run it (e.g. a newer stack state), or undefined */
  skip?: (() => string | undefined | Promise<string | undefined>) | undefined;
}

/** What a fleet run says of one host while it runs. */
export type HostPhase =
  | { phase: "waiting" }
  | { phase: "connecting"; attempt?: number }
  | { phase: "facts" }
  /** another run holds the host's run lock: this one waits for it */
  | { phase: "locked"; holder: string }
  | { phase: "compiling" }
  | { phase: "converging"; done: number; total: number; changed: number; failed: number }
  | { phase: "done"; outcome: HostOutcome };

/** The stage a host's phase belongs to (`waiting`: the run is resolving, or the host's batch has not started). */
export function stageOf(phase: HostPhase): Stage {
  const stage: Record<HostPhase["phase"], Stage> = {
    waiting: "resolve",
    connecting: "connect",
    facts: "facts",
    locked: "facts",
    compiling: "compile",
    converging: "converge",
    done: "report",
  };
  return stage[phase.phase];
}

/** How one host ended: its converge report, or why there is none. */
export type HostOutcome =
  | { status: "ok" | "failed"; report: Report; durationMs: number }
  | { status: "failed" | "unreachable"; error: OutcomeError; durationMs: number }
  | { status: "skipped"; reason: string; durationMs: 0 };

export interface OutcomeError {
  code: string;
  message: string;
  hint?: string;
}

/** What every fleet run needs besides its hosts. */
export interface FleetRunOptions {
  mode: "apply" | "plan";
  /** the run list and where its cookbooks come from; the host is filled in per member */
  compile: Omit<CompileRunListOptions, "host" | "layers">;
  connect: (target: SshTarget, onAttempt: (attempt: number) => void) => Promise<RemoteHost>;
  /** hosts converged at once, within a batch */
  forks: number;
  /** stop starting hosts once more than this share (0–100) of all hosts failed or was unreachable */
  maxFailPercent?: number;
  onPhase?: (name: string, phase: HostPhase) => void;
  /** how long a host waits for another run's lock before it fails with RUN_LOCKED (default 600 s) */
  waitMs?: number | undefined;
  /** what runs, for the lock's holder description: "galley push", "galley run deploy" */
  command?: string | undefined;
  /** aborted (SIGINT, SIGTERM): hosts not started are skipped, running converges stop as interrupted */
  signal?: AbortSignal | undefined;
  /** the run's cookbooks, already resolved (an opened bundle); else the run resolves them once */
  prepared?: PreparedCookbooks | undefined;
  /** Galley's own recipe files in the run lists: run, never recorded in the prepared set */
  builtins?: ReadonlySet<string> | undefined;
  /** called once the run's cookbooks are resolved, before any host is contacted */
  onResolved?: ((prepared: PreparedCookbooks) => void | Promise<void>) | undefined;
  /**
   * the run's secret registry (`new Secrets(processSecrets)`): what its attribute files and recipes
   * register into, and what its reports, errors and ledgers are scrubbed with. Default: the current
   * one (`currentSecrets()`: the CLI command's). Two runs at once in one process (a server) each
   * pass their own, so that neither hides, nor is marked sensitive by, the other's secrets.
   */
  secrets?: Secrets | undefined;
  /** how members with `agent` are reached (the server's agents); none: they are unreachable */
  agents?: AgentLink | undefined;
  /** agent members keep this run's job and repeat it as their drift runs (a stack's configure) */
  periodic?: boolean | undefined;
}

/** A fleet run over one batch of hosts (what `galley push` and stack events run today). */
export interface FleetOptions extends FleetRunOptions {
  members: FleetMember[];
}

/** A fleet run over batches: each batch finishes before the next starts. */
export interface FleetPlan extends FleetRunOptions {
  batches: readonly (readonly FleetMember[])[];
  /**
   * Asked after each batch but the last, with every outcome so far: a reason stops the run, and
   * every host of the later batches is skipped with it.
   */
  stop?: ((outcomes: ReadonlyMap<string, HostOutcome>) => string | undefined) | undefined;
}

/** Error codes that mean the host could not be reached, not that something on it failed. */
const unreachableCodes = new Set([
  "HOST_UNREACHABLE",
  "SSH_AUTH_FAILED",
  "HOST_KEY_UNKNOWN",
  "HOST_KEY_CHANGED",
  "BECOME_FAILED",
]);

/**
 * Runs a plan of batches: resolves the cookbooks once (every host compiles from that set, and
 * every report carries its id), then converges each batch's hosts in parallel (at most `forks` at
 * once), a batch finishing before the next starts. One host's failure never stops the others;
 * `stop` between batches, `maxFailPercent` and the signal skip hosts not yet started. Returns each
 * host's outcome in the plan's order.
 *
 * @example await runFleet({ batches: [[pilot], rest], stop: (o) => (o.get("web1")?.status === "ok" ? undefined : "the pilot failed"), … })
 */
export async function runFleet(plan: FleetPlan): Promise<Map<string, HostOutcome>> {
  const secrets = plan.secrets ?? currentSecrets();
  // everything the run does (resolve, attribute files, recipes, callbacks) registers in its registry
  return withSecrets(secrets, () => runPlan({ ...plan, secrets }));
}

async function runPlan(plan: FleetPlan & { secrets: Secrets }): Promise<Map<string, HostOutcome>> {
  const members = plan.batches.flat();
  const outcomes = new Map<string, HostOutcome>();
  for (const member of members) plan.onPhase?.(member.name, { phase: "waiting" });
  const settle = (member: FleetMember, outcome: HostOutcome) => {
    outcomes.set(member.name, outcome);
    plan.onPhase?.(member.name, { phase: "done", outcome });
  };
  if (members.length === 0) return outcomes;
  let prepared: PreparedCookbooks;
  try {
    prepared = plan.prepared ?? (await resolve(plan, members));
  } catch (error) {
    // the cookbooks cannot be resolved: every host fails with why, as each did when it resolved them itself
    for (const member of members)
      settle(member, { status: "failed", error: describe(error, plan.secrets), durationMs: 0 });
    return outcomes;
  }
  await plan.onResolved?.(prepared);
  let failures = 0;
  const tooManyFailed = () =>
    plan.maxFailPercent !== undefined && (failures * 100) / members.length > plan.maxFailPercent;
  let stopped: string | undefined;
  for (const [index, batch] of plan.batches.entries()) {
    if (stopped === undefined && index > 0) stopped = plan.stop?.(outcomes);
    const run = limit(Math.max(1, plan.forks));
    await Promise.all(
      batch.map((member) =>
        run(async () => {
          const reason = plan.signal?.aborted ? "interrupted" : (stopped ?? (await member.skip?.()));
          if (reason !== undefined) return settle(member, { status: "skipped", reason, durationMs: 0 });
          if (tooManyFailed()) {
            return settle(member, {
              status: "skipped",
              reason: `not started: more than ${plan.maxFailPercent}% of hosts failed (${failures} of ${members.length})`,
              durationMs: 0,
            });
          }
          const outcome = await runHost(member, plan, prepared, plan.secrets);
          if (outcome.status !== "ok") failures += 1;
          settle(member, outcome);
        }),
      ),
    );
  }
  return new Map(members.map((m) => [m.name, outcomes.get(m.name)!]));
}

/** The resolve stage of a fleet run: every member's run list, resolved once into one prepared set. */
async function resolve(plan: FleetRunOptions, members: readonly FleetMember[]): Promise<PreparedCookbooks> {
  const { prepareCookbooks } = await import("../cookbooks/prepared.ts");
  return prepareCookbooks({
    cookbooksDir: plan.compile.cookbooksDir,
    runLists: Object.fromEntries(members.map((m) => [m.name, [...(m.runList ?? plan.compile.runList)]])),
    builtins: plan.builtins,
  });
}

/**
 * The compile stage for one host: its catalog (and the types that converge it) from the prepared
 * set, never from the kitchen. `galley apply`, `galley push` and stack events all compile here.
 */
export async function compileHost(
  prepared: PreparedCookbooks,
  options: CompileRunListOptions,
): Promise<CompiledRun> {
  const { compileRun } = await import("../cookbooks/solo.ts");
  return compileRun({ ...options, cookbooks: prepared.cookbooks });
}

/** What the compile, converge and report stages of one host need. */
export interface HostStages {
  /** the run list and attribute layers of this host; the host is the one converged */
  compile: CompileRunListOptions;
  mode: "apply" | "plan";
  stateDir: string;
  signal?: AbortSignal | undefined;
  /** how many reads the engine may keep in flight */
  concurrency?: number | undefined;
  /** the run's secret registry (default: `currentSecrets()`) */
  secrets?: Secrets | undefined;
  /** the catalog is compiled: the converge starts next */
  onCompiled?: ((catalog: CompiledRun["catalog"]) => void) | undefined;
  onEvent?: ((event: ConvergeEvent) => void) | undefined;
}

/**
 * compile → converge → report for one connected host, from the prepared set: the one code path of
 * `galley apply` (the local host) and of every fleet host. The report carries the set's id.
 */
export async function convergeHost(prepared: PreparedCookbooks, stages: HostStages): Promise<Report> {
  const secrets = stages.secrets ?? currentSecrets();
  // attribute files and recipes register in the run's registry; compile marks and converge scrubs with it
  const { catalog, types } = await withSecrets(secrets, () => compileHost(prepared, stages.compile));
  stages.onCompiled?.(catalog);
  const report = await converge(catalog, stages.compile.host, {
    mode: stages.mode,
    stateDir: stages.stateDir,
    types,
    secrets,
    signal: stages.signal,
    ...(stages.concurrency ? { concurrency: stages.concurrency } : {}),
    ...(stages.onEvent ? { onEvent: stages.onEvent } : {}),
  });
  return withBundle(report, prepared);
}

/** The report stage: the converge's report, with the prepared set's id recorded in it. */
export function withBundle(report: Report, prepared: PreparedCookbooks): Report {
  return { ...report, bundle: prepared.id };
}

async function runHost(
  member: FleetMember,
  options: FleetRunOptions,
  prepared: PreparedCookbooks,
  secrets: Secrets,
): Promise<HostOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const phase = (p: HostPhase) => options.onPhase?.(member.name, p);
  if (member.agent) return runAgentHost(member, member.agent, options, prepared, secrets);
  let host: RemoteHost | undefined;
  let lock: HeldLock | undefined;
  try {
    phase({ phase: "connecting" });
    host = await options.connect(member.target, (attempt) => phase({ phase: "connecting", attempt }));
    phase({ phase: "facts" });
    // one run at a time on each host (a plan writes nothing there and takes no lock); when the
    // state dir is known without the facts, the lock is taken while they come
    const takeLock = (stateDir: string) =>
      acquireRunLock(host!, stateDir, {
        waitMs: options.waitMs ?? 600_000,
        command: options.command ?? "galley push",
        signal: options.signal,
        onWait: (holder) => phase({ phase: "locked", holder: describeHolder(holder) }),
      });
    const early = options.mode === "apply" ? stateDirBeforeFacts(member.target) : undefined;
    const locking = early === undefined ? undefined : takeLock(early);
    locking?.catch(() => {});
    const facts = await host.facts().catch(async (error: unknown) => {
      await locking?.then((held) => held.release()).catch(() => {});
      throw error;
    });
    const stateDir = member.target.stateDir ?? remoteStateDir(facts.user);
    if (locking) {
      lock = await locking;
      // a login named root that is not uid 0: its state dir is elsewhere
      if (early !== stateDir) {
        await lock.release();
        lock = undefined;
      }
    }
    if (options.mode === "apply" && lock === undefined) lock = await takeLock(stateDir);
    phase({ phase: "compiling" });
    let changed = 0;
    let failed = 0;
    const report = await convergeHost(prepared, {
      compile: {
        ...options.compile,
        ...(member.runList ? { runList: [...member.runList] } : {}),
        host,
        layers: member.attributes,
        stack: member.stack,
      },
      mode: options.mode,
      stateDir,
      secrets,
      signal: options.signal,
      concurrency: host.readConcurrency,
      onEvent: (event: ConvergeEvent) => {
        if (event.kind === "start")
          return phase({ phase: "converging", done: 0, total: event.total, changed, failed });
        if (event.report.status === "changed" || event.report.status === "pending") changed += 1;
        if (event.report.status === "failed") failed += 1;
        phase({ phase: "converging", done: event.index + 1, total: event.total, changed, failed });
      },
    });
    // a connection lost mid-run shows up as failed resources: the truth is that the host went away
    if (host.lost)
      return { status: "unreachable", error: describe(host.lost, secrets), durationMs: elapsed() };
    return { status: report.status === "ok" ? "ok" : "failed", report, durationMs: elapsed() };
  } catch (error) {
    const lost = host?.lost ?? (isGalleyError(error) && unreachableCodes.has(error.code) ? error : undefined);
    if (lost) return { status: "unreachable", error: describe(lost, secrets), durationMs: elapsed() };
    return { status: "failed", error: describe(error, secrets), durationMs: elapsed() };
  } finally {
    // closing the connection ends the lock's holder too: both at once, not one round trip each
    await Promise.all([lock?.release().catch(() => {}), host?.close().catch(() => {})]);
  }
}

/**
 * One agent-managed host: its agent converges it locally (and takes its run lock there) from a
 * converge job; its phases are the fleet's. Without an AgentLink (a run outside the server) it is
 * unreachable, with a hint to run it through the server.
 */
async function runAgentHost(
  member: FleetMember,
  target: AgentTarget,
  options: FleetRunOptions,
  prepared: PreparedCookbooks,
  secrets: Secrets,
): Promise<HostOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  if (!options.agents) {
    const error = new GalleyError("HOST_UNREACHABLE", `${member.name} is managed by an agent`, {
      hint: "run this through galley server (galley --server URL …)",
    });
    return { status: "unreachable", error: describe(error, secrets), durationMs: elapsed() };
  }
  try {
    const { agentJob } = await import("./agent-job.ts");
    const job = agentJob(member, options, prepared, secrets);
    options.onPhase?.(member.name, { phase: "connecting" });
    if (member.files?.length) await shipFiles(options.agents, target, member.files, options.signal);
    const outcome = await options.agents.converge(target, job, {
      signal: options.signal,
      // the agent's own "done" is not the fleet's: the pipeline settles the host once
      onPhase: (p) => {
        if (p.phase !== "done") options.onPhase?.(member.name, p);
      },
    });
    // what crossed the channel is scrubbed here too: the run's registry is the judge
    if (!("error" in outcome)) return outcome;
    const { code, message, hint } = outcome.error;
    return {
      ...outcome,
      error: { code, message: secrets.scrub(message), ...(hint ? { hint: secrets.scrub(hint) } : {}) },
    };
  } catch (error) {
    const lost = isGalleyError(error) && unreachableCodes.has(error.code);
    return {
      status: lost ? "unreachable" : "failed",
      error: describe(error, secrets),
      durationMs: elapsed(),
    };
  }
}

// the files an agent host lacks (or has with another size), written over its channel
async function shipFiles(
  agents: AgentLink,
  target: AgentTarget,
  files: readonly { local: string; remote: string }[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const { readFile, stat } = await import("node:fs/promises");
  const host = await agents.connect(target, { signal });
  try {
    for (const file of files) {
      // an archive the host already has is not read here at all
      if ((await host.stat(file.remote))?.size === (await stat(file.local)).size) continue;
      const bytes = await readFile(file.local);
      const dir = file.remote.slice(0, file.remote.lastIndexOf("/")) || "/";
      const made = await host.exec(["mkdir", "-p", dir]);
      if (made.exitCode !== 0)
        throw new GalleyError("EXEC_FAILED", `cannot make ${dir} on ${host.name}: ${made.stderr.trim()}`);
      await host.writeFile(file.remote, bytes, { mode: 0o644 });
    }
  } finally {
    await host.close();
  }
}

/** The host's state dir as far as it is known before its facts: the inventory's, or root's when the run is root's. */
function stateDirBeforeFacts(target: SshTarget): string | undefined {
  if (target.stateDir !== undefined) return target.stateDir;
  return (target.become ? target.becomeUser : target.user) === "root" ? rootStateDir : undefined;
}

/** Where the host keeps Galley's state: /var/lib/galley for root, else under the user's home. */
export function remoteStateDir(user: { uid: number; home: string }): string {
  return stateDirOf(user);
}

function describe(error: unknown, secrets: Secrets): OutcomeError {
  if (isGalleyError(error)) {
    return {
      code: error.code,
      message: secrets.scrub(error.message),
      ...(error.hint ? { hint: secrets.scrub(error.hint) } : {}),
    };
  }
  return { code: "INTERNAL", message: secrets.scrub(errorMessage(error)) };
}
