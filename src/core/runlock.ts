import * as os from "node:os";
import * as path from "node:path";
import { GalleyError } from "./errors.ts";
import { canLock, type HeldLock, type Host } from "./host.ts";

// One run at a time per host: every run that may change a host holds an exclusive kernel lock on
// `<state dir>/run.lock` (flock, through the host's LockingHost ability) for its whole converge.
// Beside it, `run.lock.json` says who holds it, for the "waiting for…" line of the next run.

/** The lock file and its holder's description in the state dir. */
export const runLockFile = "run.lock";
export const runHolderFile = "run.lock.json";

/** Who holds a host's run lock, as the holder wrote it. */
export interface RunHolder {
  pid: number;
  /** the machine Galley runs on (the controller), not the host */
  controller: string;
  command: string;
  /** when it took the lock (ISO time) */
  since: string;
}

export interface RunLockOptions {
  /** how long to wait for a run in progress; 0: fail at once */
  waitMs: number;
  /** what takes it, for the next run's message: "galley apply" */
  command: string;
  signal?: AbortSignal | undefined;
  /** called once when another run holds the lock, before waiting for it (not with waitMs 0) */
  onWait?: (holder: RunHolder | undefined) => void;
}

/**
 * Takes the host's run lock, waiting up to `waitMs` for a run in progress; RUN_LOCKED when it
 * does not end in time. A host without the LockingHost ability runs unlocked.
 *
 * @example const lock = await acquireRunLock(host, stateDir, { waitMs: 600_000, command: "galley apply" });
 */
export async function acquireRunLock(
  host: Host,
  stateDir: string,
  options: RunLockOptions,
): Promise<HeldLock> {
  if (!canLock(host)) return { release: async () => {} };
  const file = path.join(stateDir, runLockFile);
  // the folder is made, the lock taken and its holder written in one step (one exec over SSH)
  const take = (waitMs: number) =>
    host.lock(file, {
      waitMs,
      signal: options.signal,
      dirMode: 0o700,
      holder: {
        file: path.join(stateDir, runHolderFile),
        content: `${JSON.stringify(holderNow(options))}\n`,
      },
    });
  let held = await take(0);
  if (!held) {
    const holder = await readHolder(host, stateDir);
    if (options.waitMs > 0) {
      options.onWait?.(holder);
      held = await take(options.waitMs);
    }
    if (!held) {
      const now = await readHolder(host, stateDir);
      const waited = options.waitMs > 0 ? ` after waiting ${options.waitMs / 1000} s` : "";
      throw new GalleyError(
        "RUN_LOCKED",
        `${host.name} is busy with ${describeHolder(now ?? holder)}${waited} (lock ${file})`,
        {
          hint: "wait for that run to end, or give it longer with --wait SECONDS; a run that died holds no lock",
        },
      );
    }
  }
  return held;
}

/** This run, as the holder file describes it (written when the lock is taken). */
function holderNow(options: RunLockOptions): RunHolder {
  return {
    pid: process.pid,
    controller: os.hostname(),
    command: options.command,
    since: new Date().toISOString(),
  };
}

/** "the run of PID 4242 on ctl1 since 2026-01-02T03:04:05Z (galley apply)", or what is known. */
export function describeHolder(holder: RunHolder | undefined): string {
  if (!holder) return "another run";
  return `the run of PID ${holder.pid} on ${holder.controller} since ${holder.since} (${holder.command})`;
}

async function readHolder(host: Host, stateDir: string): Promise<RunHolder | undefined> {
  try {
    const data = await host.readFile(path.join(stateDir, runHolderFile));
    if (!data) return undefined;
    const parsed = JSON.parse(new TextDecoder().decode(data)) as Partial<RunHolder>;
    if (typeof parsed.pid !== "number" || typeof parsed.since !== "string") return undefined;
    return {
      pid: parsed.pid,
      controller: String(parsed.controller ?? "?"),
      command: String(parsed.command ?? "galley"),
      since: parsed.since,
    };
  } catch {
    // only a description for a message: a torn or foreign file says nothing
    return undefined;
  }
}
