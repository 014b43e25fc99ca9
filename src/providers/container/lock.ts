import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError, isGalleyError } from "../../core/errors.ts";
import { flockLocal } from "../../hosts/flock.ts";

/** how long a second command waits for the fleet, the network or the image: a day, in effect forever */
const waitForeverMs = 24 * 3600 * 1000;

/**
 * Runs `fn` holding an exclusive flock(2) on `file`, taken by the same holder as the run lock
 * (src/hosts/flock.ts): when this process dies, even by SIGKILL, the kernel drops the lock, so a
 * crash never leaves a stale lock behind. `onWait` is called once when another command holds it.
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
  const held = await take(file, what, onWait).catch((error: unknown) => {
    throw isGalleyError(error) && error.code === "EXEC_FAILED"
      ? new GalleyError("PROVIDER_FAILED", `cannot lock ${what}: ${error.message}`, {
          ...(error.hint ? { hint: error.hint } : {}),
          cause: error,
        })
      : error;
  });
  try {
    return await fn();
  } finally {
    await held.release();
  }
}

async function take(file: string, what: string, onWait?: () => void) {
  const now = await flockLocal(file, { waitMs: 0 });
  if (now) return now;
  onWait?.();
  const later = await flockLocal(file, { waitMs: waitForeverMs });
  if (later) return later;
  throw new GalleyError(
    "PROVIDER_FAILED",
    `cannot lock ${what} (${file}): another command held it for a day`,
    {
      hint: "find the galley command holding it (fuser FILE) and end it",
    },
  );
}
