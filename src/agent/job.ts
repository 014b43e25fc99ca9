import * as os from "node:os";
import * as path from "node:path";
import { errorMessage, isGalleyError } from "../core/errors.ts";
import type { HeldLock } from "../core/host.ts";
import { acquireRunLock, describeHolder } from "../core/runlock.ts";
import { processSecrets, Secrets } from "../core/secrets.ts";
import { openBundle } from "../cookbooks/bundle.ts";
import { loadCookbooks } from "../cookbooks/cookbook.ts";
import type { PreparedCookbooks } from "../cookbooks/prepared.ts";
import type { ConvergeJob } from "../fleet/agent-protocol.ts";
import { convergeHost, type HostOutcome, type HostPhase, type OutcomeError } from "../fleet/pipeline.ts";
import { LocalHost } from "../hosts/local.ts";
import { rootStateDir } from "../hosts/statedir.ts";
import type { LifecycleEvent } from "../stacks/schema.ts";
import { StackView } from "../stacks/state.ts";
import type { BundleCache, BundleFetch } from "./bundles.ts";
import { isBuiltin, resolveBuiltin } from "./builtin.ts";

// One converge job on the agent's own host: the same stages a pushed host goes through (lock,
// compile from the bundle, converge, report), with a LocalHost, from the bundle the job names.

/** What running a job needs besides the job. */
export interface JobOptions {
  bundles: BundleCache;
  /** how a bundle not cached is fetched (GET /v1/bundles/:id) */
  fetch: BundleFetch;
  /** the host's Galley state dir (run lock, ledger); default /var/lib/galley */
  hostStateDir?: string | undefined;
  signal?: AbortSignal | undefined;
  onPhase?: ((phase: HostPhase) => void) | undefined;
  /** the host's name in reports (default: this machine's host name) */
  hostName?: string | undefined;
}

/**
 * Runs a converge job here and says how it ended; never throws (a failure is the outcome's).
 * The report is scrubbed of the job's secrets.
 *
 * @example const outcome = await runConvergeJob(job, { bundles, fetch, onPhase: (p) => send({ type: "job-phase", id, phase: p }) })
 */
export async function runConvergeJob(job: ConvergeJob, options: JobOptions): Promise<HostOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const secrets = new Secrets(processSecrets);
  secrets.register(job.secrets);
  const phase = (p: HostPhase) => options.onPhase?.(p);
  const stateDir = options.hostStateDir ?? rootStateDir;
  let lock: HeldLock | undefined;
  try {
    phase({ phase: "connecting" });
    const { prepared, cookbooksDir } = await preparedOf(job, options);
    const host = new LocalHost(options.hostName ?? os.hostname(), { signal: options.signal });
    phase({ phase: "facts" });
    if (job.mode === "apply") {
      lock = await acquireRunLock(host, stateDir, {
        waitMs: job.waitMs ?? 600_000,
        command: job.command,
        signal: options.signal,
        onWait: (holder) => phase({ phase: "locked", holder: describeHolder(holder) }),
      });
    }
    phase({ phase: "compiling" });
    let changed = 0;
    let failed = 0;
    const report = await convergeHost(prepared, {
      compile: {
        runList: job.runList.map((item) => resolveBuiltin(item)),
        cookbooksDir,
        attributeFiles: [],
        host,
        layers: job.attributes,
        stack: job.stack
          ? new StackView(job.stack.state, job.stack.instance, {
              event: job.stack.event as LifecycleEvent | "run-recipes",
              version: job.stack.version,
              deploying: job.stack.deploying,
            })
          : undefined,
      },
      mode: job.mode,
      stateDir,
      secrets,
      signal: options.signal,
      onEvent: (event) => {
        if (event.kind === "start")
          return phase({ phase: "converging", done: 0, total: event.total, changed, failed });
        if (event.report.status === "changed" || event.report.status === "pending") changed += 1;
        if (event.report.status === "failed") failed += 1;
        phase({ phase: "converging", done: event.index + 1, total: event.total, changed, failed });
      },
    });
    return {
      status: report.status === "ok" ? "ok" : "failed",
      report: scrubDeep(report, secrets),
      durationMs: elapsed(),
    };
  } catch (error) {
    return { status: "failed", error: describeError(error, secrets), durationMs: elapsed() };
  } finally {
    await lock?.release().catch(() => {});
  }
}

/** The job's bundle, fetched when not cached, verified, extracted beside it and loaded. */
async function preparedOf(
  job: ConvergeJob,
  options: JobOptions,
): Promise<{ prepared: PreparedCookbooks; cookbooksDir: string }> {
  const { file } = await options.bundles.ensure(job.bundle, options.fetch);
  // extracted beside the archive: <state>/bundles/<id>/
  const opened = await openBundle(file, path.dirname(options.bundles.dir));
  const prepared: PreparedCookbooks = {
    id: opened.id,
    kind: "bundle",
    cookbooks: await loadCookbooks(opened.cookbooksDir),
    runLists: { default: job.runList.filter((item) => !isBuiltin(item)) },
    file,
  };
  return { prepared, cookbooksDir: opened.cookbooksDir };
}

/** An error as an outcome carries it, scrubbed. */
export function describeError(error: unknown, secrets: Secrets): OutcomeError {
  if (isGalleyError(error))
    return {
      code: error.code,
      message: secrets.scrub(error.message),
      ...(error.hint ? { hint: secrets.scrub(error.hint) } : {}),
    };
  return { code: "INTERNAL", message: secrets.scrub(errorMessage(error)) };
}

/** Every string in a JSON value with the secrets hidden. */
export function scrubDeep<T>(value: T, secrets: Secrets): T {
  if (typeof value === "string") return secrets.scrub(value) as T;
  if (Array.isArray(value)) return value.map((item) => scrubDeep(item, secrets)) as T;
  if (value !== null && typeof value === "object")
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubDeep(v, secrets)])) as T;
  return value;
}
