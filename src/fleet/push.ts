import type { Attributes } from "../core/attributes.ts";
import { type ConvergeEvent, converge } from "../core/converge.ts";
import { errorMessage, type GalleyError, isGalleyError } from "../core/errors.ts";
import type { HeldLock, Host } from "../core/host.ts";
import { limit } from "../core/limit.ts";
import type { Report } from "../core/report.ts";
import { acquireRunLock, describeHolder } from "../core/runlock.ts";
import { scrubSecrets } from "../core/secrets.ts";
import type { CompileRunListOptions } from "../cookbooks/solo.ts";
import type { SshTarget } from "../hosts/target.ts";
import type { AttributeSource } from "../cookbooks/precedence.ts";
import type { StackView } from "../stacks/state.ts";
import { stateDirOf } from "../hosts/statedir.ts";

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

export interface FleetOptions {
  members: FleetMember[];
  mode: "apply" | "plan";
  /** the run list and where its cookbooks come from; the host is filled in per member */
  compile: Omit<CompileRunListOptions, "host" | "layers">;
  connect: (target: SshTarget, onAttempt: (attempt: number) => void) => Promise<RemoteHost>;
  /** hosts converged at once */
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
 * Converges every member in parallel (at most `forks` at once) and returns each host's outcome,
 * in the members' order. One host's failure never stops the others; with `maxFailPercent`, hosts
 * not yet started are skipped once too many failed.
 */
export async function pushFleet(options: FleetOptions): Promise<Map<string, HostOutcome>> {
  const outcomes = new Map<string, HostOutcome>();
  const run = limit(Math.max(1, options.forks));
  let failures = 0;
  const tooManyFailed = () =>
    options.maxFailPercent !== undefined &&
    (failures * 100) / options.members.length > options.maxFailPercent;
  for (const member of options.members) options.onPhase?.(member.name, { phase: "waiting" });
  await Promise.all(
    options.members.map((member) =>
      run(async () => {
        let outcome: HostOutcome;
        const reason = options.signal?.aborted ? "interrupted" : await member.skip?.();
        if (reason !== undefined) {
          outcome = { status: "skipped", reason, durationMs: 0 };
        } else if (tooManyFailed()) {
          outcome = {
            status: "skipped",
            reason: `not started: more than ${options.maxFailPercent}% of hosts failed (${failures} of ${options.members.length})`,
            durationMs: 0,
          };
        } else {
          outcome = await pushHost(member, options);
          if (outcome.status !== "ok") failures += 1;
        }
        outcomes.set(member.name, outcome);
        options.onPhase?.(member.name, { phase: "done", outcome });
      }),
    ),
  );
  return new Map(options.members.map((m) => [m.name, outcomes.get(m.name)!]));
}

async function pushHost(member: FleetMember, options: FleetOptions): Promise<HostOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const phase = (p: HostPhase) => options.onPhase?.(member.name, p);
  let host: RemoteHost | undefined;
  let lock: HeldLock | undefined;
  try {
    phase({ phase: "connecting" });
    host = await options.connect(member.target, (attempt) => phase({ phase: "connecting", attempt }));
    phase({ phase: "facts" });
    const facts = await host.facts();
    const stateDir = remoteStateDir(facts.user);
    // one run at a time on each host: a plan writes nothing there and takes no lock
    if (options.mode === "apply") {
      lock = await acquireRunLock(host, stateDir, {
        waitMs: options.waitMs ?? 600_000,
        command: options.command ?? "galley push",
        signal: options.signal,
        onWait: (holder) => phase({ phase: "locked", holder: describeHolder(holder) }),
      });
    }
    phase({ phase: "compiling" });
    const { compileRun } = await import("../cookbooks/solo.ts");
    const { catalog, types } = await compileRun({
      ...options.compile,
      ...(member.runList ? { runList: [...member.runList] } : {}),
      host,
      layers: member.attributes,
      stack: member.stack,
    });
    let changed = 0;
    let failed = 0;
    const report = await converge(catalog, host, {
      mode: options.mode,
      stateDir,
      types,
      signal: options.signal,
      ...(host.readConcurrency ? { concurrency: host.readConcurrency } : {}),
      onEvent: (event: ConvergeEvent) => {
        if (event.kind === "start")
          return phase({ phase: "converging", done: 0, total: event.total, changed, failed });
        if (event.report.status === "changed" || event.report.status === "pending") changed += 1;
        if (event.report.status === "failed") failed += 1;
        phase({ phase: "converging", done: event.index + 1, total: event.total, changed, failed });
      },
    });
    // a connection lost mid-run shows up as failed resources: the truth is that the host went away
    if (host.lost) return { status: "unreachable", error: describe(host.lost), durationMs: elapsed() };
    return { status: report.status === "ok" ? "ok" : "failed", report, durationMs: elapsed() };
  } catch (error) {
    const lost = host?.lost ?? (isGalleyError(error) && unreachableCodes.has(error.code) ? error : undefined);
    if (lost) return { status: "unreachable", error: describe(lost), durationMs: elapsed() };
    return { status: "failed", error: describe(error), durationMs: elapsed() };
  } finally {
    await lock?.release().catch(() => {});
    await host?.close().catch(() => {});
  }
}

/** Where the host keeps Galley's state: /var/lib/galley for root, else under the user's home. */
export function remoteStateDir(user: { uid: number; home: string }): string {
  return stateDirOf(user);
}

function describe(error: unknown): OutcomeError {
  if (isGalleyError(error)) {
    return {
      code: error.code,
      message: scrubSecrets(error.message),
      ...(error.hint ? { hint: scrubSecrets(error.hint) } : {}),
    };
  }
  return { code: "INTERNAL", message: scrubSecrets(errorMessage(error)) };
}
