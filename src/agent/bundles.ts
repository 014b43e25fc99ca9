import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

// Bundles by content id on the agent's host (`bundles/<id>.tgz`): fetched once, checked against
// their id before they are kept, written atomically; a job whose bundle is here transfers nothing.

/** Where a bundle comes from when it is not cached: its bytes. */
export type BundleFetch = (id: string) => Promise<Uint8Array>;

/** The agent's bundle cache. */
export class BundleCache {
  readonly dir: string;

  constructor(stateDir: string) {
    this.dir = path.join(stateDir, "bundles");
  }

  /** The cached file of bundle `id` (whether it is there or not). */
  file(id: string): string {
    return path.join(this.dir, `${id}.tgz`);
  }

  /**
   * The file of bundle `id`: the cached one, else fetched, verified (sha256 == id) and kept.
   * `fetched` is the bytes transferred (0: cached). BUNDLE_INVALID when the bytes are not the bundle.
   *
   * @example const { file } = await cache.ensure(job.bundle, (id) => download(id))
   */
  async ensure(id: string, fetch: BundleFetch): Promise<{ file: string; fetched: number }> {
    if (!/^[0-9a-f]{64}$/.test(id))
      throw new GalleyError("BUNDLE_INVALID", `"${id}" is not a bundle id (64 hex digits)`, {
        hint: "the server sent a job with a bad bundle id: report it",
      });
    const file = this.file(id);
    if (await exists(file)) return { file, fetched: 0 };
    const data = await fetch(id);
    const actual = createHash("sha256").update(data).digest("hex");
    if (actual !== id)
      throw new GalleyError("BUNDLE_INVALID", `the bundle received for ${id} has the id ${actual}`, {
        hint: "it was changed or cut short on the way: the next job fetches it again",
      });
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(file, data, { mode: 0o600 });
    return { file, fetched: data.length };
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await fs.stat(file)).isFile();
  } catch {
    return false;
  }
}
