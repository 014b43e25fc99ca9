import { spawn } from "node:child_process";
import { GalleyError } from "../core/errors.ts";
import * as path from "node:path";
import type { HeldLock, LockOptions } from "../core/host.ts";

// A lock is held by `flock FILE sh -c 'echo locked; exec cat'`: flock holds the lock while `cat`
// reads our pipe (a local pipe, or an SSH channel). When Galley dies, even by SIGKILL, or its
// connection drops, the pipe closes, `cat` ends, flock exits and the kernel drops the lock: there
// is never a stale lock to detect, nor a PID to guess.

/** The exit code flock gives when the lock stayed taken (its --conflict-exit-code). */
export const lockConflict = 75;

/**
 * The command that takes and holds an exclusive flock on `file`, waiting at most `waitMs` (0: one
 * try); with `dirMode`, it makes the file's folder first, and with `holder`, it writes that file
 * once the lock is held and before it says so: over SSH, taking a run lock is one exec.
 */
export function flockArgv(file: string, options: LockOptions): string[] {
  const { waitMs } = options;
  const wait = waitMs <= 0 ? ["--nonblock"] : ["--timeout", String(Math.max(waitMs, 1) / 1000)];
  const flock = ["flock", "--exclusive", "--conflict-exit-code", String(lockConflict), ...wait, "--", file];
  const holder = options.holder;
  const hold = holder
    ? [
        "sh",
        "-c",
        'umask 077; printf "%s" "$2" > "$1.tmp" && mv -f -- "$1.tmp" "$1" || exit 1; echo locked; exec cat >/dev/null',
        "sh",
        holder.file,
        holder.content,
      ]
    : ["sh", "-c", "echo locked; exec cat >/dev/null"];
  if (options.dirMode === undefined) return [...flock, ...hold];
  return [
    "sh",
    "-c",
    'mkdir -p -- "$1" && chmod "$2" -- "$1" || exit 1; shift 2; exec "$@"',
    "sh",
    path.posix.dirname(file),
    options.dirMode.toString(8),
    ...flock,
    ...hold,
  ];
}

/**
 * Takes an exclusive flock on a file of this machine; undefined when another holder kept it for
 * `waitMs`. An aborted `signal` stops the wait with its reason.
 *
 * @example const held = await flockLocal("/var/lib/galley/run.lock", { waitMs: 0 }); await held?.release();
 */
export function flockLocal(file: string, options: LockOptions): Promise<HeldLock | undefined> {
  const [command, ...args] = flockArgv(file, options);
  return new Promise((resolve, reject) => {
    // its own process group: a Ctrl-C on the terminal must not drop the lock before the run ends
    const child = spawn(command!, args, { stdio: ["pipe", "pipe", "pipe"], detached: true });
    let locked = false;
    let stderr = "";
    const onAbort = () => {
      child.kill("SIGKILL");
      reject(options.signal?.reason);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const settle = () => options.signal?.removeEventListener("abort", onAbort);
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const closed = new Promise<void>((done) => child.on("close", () => done()));
    child.stdout.once("data", () => {
      locked = true;
      settle();
      // the holder must not keep Galley alive: the lock ends with the process at the latest
      const streams = [child.stdin, child.stdout, child.stderr] as unknown as {
        ref?(): void;
        unref?(): void;
      }[];
      child.unref();
      for (const stream of streams) stream.unref?.();
      resolve({
        release: async () => {
          // now the release is awaited: wait for the holder to end
          child.ref();
          for (const stream of streams) stream.ref?.();
          child.stdin.end();
          await closed;
        },
      });
    });
    child.stdin.on("error", () => {});
    child.on("error", (error) => {
      settle();
      reject(
        new GalleyError("EXEC_FAILED", `cannot lock ${file}: ${error.message}`, {
          hint: "flock(1) comes with util-linux: apt-get install util-linux",
        }),
      );
    });
    child.on("close", (code) => {
      settle();
      if (locked) return;
      if (code === lockConflict) return resolve(undefined);
      reject(
        new GalleyError("EXEC_FAILED", `cannot lock ${file}: ${stderr.trim() || `flock exited ${code}`}`, {
          hint: "check that the folder exists and is writable",
        }),
      );
    });
  });
}
