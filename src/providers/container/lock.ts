import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../../core/errors.ts";

/**
 * Runs `fn` holding an exclusive flock(2) on `file`. The lock is held by a `flock` child whose stdin
 * is our pipe: when this process dies, even by SIGKILL, the pipe closes, the child exits and the
 * kernel drops the lock, so a crash never leaves a stale lock behind.
 *
 * @example await withLock(".galley/hosts/lock", "the fleet", () => up())
 */
export async function withLock<T>(
  file: string,
  what: string,
  fn: () => Promise<T>,
  onWait?: () => void,
): Promise<T> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const release = await acquire(file, what, onWait);
  try {
    return await fn();
  } finally {
    release();
  }
}

function acquire(file: string, what: string, onWait?: () => void): Promise<() => void> {
  return new Promise((resolve, reject) => {
    // `cat` holds the lock until its stdin (our pipe) closes
    const child = spawn("flock", ["--exclusive", file, "sh", "-c", "echo locked; exec cat >/dev/null"], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    let locked = false;
    const waiting = setTimeout(() => onWait?.(), 300);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on("data", () => {
      if (locked) return;
      locked = true;
      clearTimeout(waiting);
      // the lock must not keep galley alive, nor end with it before release
      child.unref();
      (child.stdout as unknown as { unref?: () => void }).unref?.();
      (child.stderr as unknown as { unref?: () => void }).unref?.();
      (child.stdin as unknown as { unref?: () => void }).unref?.();
      resolve(() => child.stdin.end());
    });
    child.on("error", (error) => {
      clearTimeout(waiting);
      reject(
        new GalleyError("PROVIDER_FAILED", `cannot lock ${what} (${file}): ${error.message}`, {
          hint: "flock(1) comes with util-linux: apt-get install util-linux",
        }),
      );
    });
    child.on("close", (code) => {
      clearTimeout(waiting);
      if (!locked) {
        reject(
          new GalleyError("PROVIDER_FAILED", `cannot lock ${what} (${file}): ${stderr.trim() || code}`, {
            hint: "check that the folder is writable",
          }),
        );
      }
    });
  });
}
