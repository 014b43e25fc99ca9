import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { type Cookbook, loadCookbooks } from "./cookbook.ts";
import { cacheDir } from "./git.ts";
import {
  formatLock,
  type Lockfile,
  lockedCookbookDir,
  lockFileName,
  readLock,
  verifyLocked,
} from "./lock.ts";
import { isGitSource, loadSources, type Sources } from "./sources.ts";

export { cacheDir } from "./git.ts";
export type { LockedCookbook, Lockfile } from "./lock.ts";

/**
 * The cookbooks every run (apply, plan, compile, attrs, bundle) uses:
 * - a kitchen with cookbooks.yaml: exactly the versions of its cookbooks.lock (which must exist and be
 *   current), from their folders or the cache, each verified against the lock;
 * - `cookbooksDir` holding a cookbooks.lock (a vendored folder): its cookbooks, each verified against that
 *   lock (which must equal the kitchen's when the kitchen has cookbooks.yaml);
 * - else the plain folder `cookbooksDir` (default `<root>/cookbooks`), unlocked.
 *
 * @example const { cookbooks, lock } = await kitchenCookbooks({ root: process.cwd() });
 */
export async function kitchenCookbooks(options: {
  root: string;
  cookbooksDir?: string;
}): Promise<{ cookbooks: Map<string, Cookbook>; lock: Lockfile | undefined }> {
  const root = path.resolve(options.root);
  const folder = path.resolve(root, options.cookbooksDir ?? "cookbooks");
  const sources = await loadSources(root);
  const vendored = await readLock(path.join(folder, lockFileName));
  if (!sources) {
    if (vendored) return { cookbooks: await vendoredCookbooks(folder, vendored), lock: vendored };
    return { cookbooks: await loadCookbooks(folder), lock: undefined };
  }
  const lock = await currentLock(sources);
  if (!vendored) return { cookbooks: await lockedCookbooks(sources, lock), lock };
  if (formatLock(vendored) !== formatLock(lock)) {
    throw new GalleyError(
      "LOCK_INVALID",
      `the vendored folder ${folder} holds other versions than ${path.join(root, lockFileName)}`,
      { hint: `vendor again: galley cookbooks vendor ${folder}` },
    );
  }
  return { cookbooks: await vendoredCookbooks(folder, vendored), lock };
}

/** A kitchen's cookbooks.yaml, its current lock and its verified cookbooks (what `galley cookbooks vendor` copies). */
export async function lockedKitchen(
  root: string,
): Promise<{ sources: Sources; lock: Lockfile; cookbooks: Map<string, Cookbook> }> {
  const sources = await requireSources(root);
  const lock = await currentLock(sources);
  return { sources, lock, cookbooks: await lockedCookbooks(sources, lock) };
}

/** The kitchen's cookbooks.yaml, or an error saying how to write one. */
export async function requireSources(root: string): Promise<Sources> {
  const sources = await loadSources(root);
  if (sources) return sources;
  throw new GalleyError("SOURCE_INVALID", `no cookbooks.yaml in ${path.resolve(root)}`, {
    hint: "create it, e.g. cookbooks: { web: { path: ./cookbooks/web } } (see docs/cookbook-sources.md), or pass --kitchen DIR",
  });
}

// the kitchen's cookbooks.lock, which must exist and match cookbooks.yaml
async function currentLock(sources: Sources): Promise<Lockfile> {
  const lockFile = path.join(sources.root, lockFileName);
  const lock = await readLock(lockFile);
  if (!lock) {
    throw new GalleyError("LOCK_INVALID", `no cookbooks.lock beside ${sources.file}`, {
      hint: "run galley cookbooks install",
    });
  }
  if (lock.sourcesSha256 !== sources.sha256) {
    throw new GalleyError(
      "LOCK_INVALID",
      `${lockFile} is stale: ${sources.file} changed since it was locked`,
      {
        hint: "run galley cookbooks install to re-lock it",
      },
    );
  }
  return lock;
}

async function lockedCookbooks(sources: Sources, lock: Lockfile): Promise<Map<string, Cookbook>> {
  const cache = cacheDir();
  const cookbooks = new Map<string, Cookbook>();
  for (const [name, entry] of Object.entries(lock.cookbooks)) {
    const dir = lockedCookbookDir(sources.root, cache, name, entry);
    cookbooks.set(name, await verifyLocked(name, entry, dir, isGitSource(entry.source) ? "cache" : "path"));
  }
  return cookbooks;
}

async function vendoredCookbooks(folder: string, lock: Lockfile): Promise<Map<string, Cookbook>> {
  const cookbooks = new Map<string, Cookbook>();
  for (const [name, entry] of Object.entries(lock.cookbooks))
    cookbooks.set(name, await verifyLocked(name, entry, path.join(folder, name), "vendor"));
  return cookbooks;
}
