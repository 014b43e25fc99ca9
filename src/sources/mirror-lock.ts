import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { flockLocal } from "../hosts/flock.ts";

// A git mirror in the cache (cookbook sources, app sources) is cloned or fetched by one caller at
// a time: concurrent callers of this process queue on a promise chain per mirror, and other
// Galley processes on `<mirror>.lock` (a flock that dies with its holder, never stale).

/** How long a fetch waits for another process's fetch of the same mirror. */
const mirrorWaitMs = 10 * 60_000;

const chains = new Map<string, Promise<void>>();

/**
 * Runs `fn` (a clone or fetch of `mirror`) alone: after every earlier call for the same mirror in
 * this process, and holding the mirror's lock file against other processes.
 *
 * @example await withMirrorLock(dir, () => git(["fetch", "origin"], dir))
 */
export async function withMirrorLock<T>(mirror: string, fn: () => Promise<T>): Promise<T> {
  const key = path.resolve(mirror);
  const previous = chains.get(key) ?? Promise.resolve();
  let done!: () => void;
  const mine = previous.then(() => new Promise<void>((resolve) => (done = resolve)));
  chains.set(key, mine);
  await previous;
  try {
    await fs.mkdir(path.dirname(key), { recursive: true });
    const lockFile = `${key}.lock`;
    const held = await flockLocal(lockFile, { waitMs: mirrorWaitMs });
    if (!held) {
      throw new GalleyError(
        "SOURCE_INVALID",
        `another Galley process kept the git mirror ${key} busy for ${mirrorWaitMs / 60_000} minutes`,
        { hint: `let that process finish; a process that died holds no lock (${lockFile})` },
      );
    }
    try {
      return await fn();
    } finally {
      await held.release();
    }
  } finally {
    done();
    if (chains.get(key) === mine) chains.delete(key);
  }
}
