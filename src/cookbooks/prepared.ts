import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { type Cookbook, loadCookbooks } from "./cookbook.ts";
import { cookbookDigest } from "./digest.ts";
import { cacheDir as defaultCacheDir } from "./git.ts";
import { lockedCookbookDir, lockFileName } from "./lock.ts";
import { sourcesFileName } from "./sources.ts";

// The resolve stage of a prepared run: the cookbooks a command, event or deployment runs, resolved
// once into one content-addressed set (a bundle), named by its id, from which every host compiles.

/** One run's cookbooks, resolved once: every host of the run compiles from exactly this set. */
export interface PreparedCookbooks {
  /**
   * The bundle id (64 hex digits: `galley bundle` of the same lock and run list prints it), or, for
   * a kitchen without a lock or a run naming a recipe file, `digest:` and the sha256 of what was read.
   */
  id: string;
  /** bundle: a real bundle, kept in the cache and runnable again; digest: an unlocked kitchen's content */
  kind: "bundle" | "digest";
  /** the cookbooks, by name: a bundle's from its extraction in the cache, else the kitchen's folder */
  cookbooks: Map<string, Cookbook>;
  /** the run lists recorded in the set (a bundle's `default`, or one per member) */
  runLists: Record<string, string[]>;
  /** the bundle file in the cache (kind bundle) */
  file?: string | undefined;
}

/** What the resolve stage needs: the cookbooks folder and every run list of the run. */
export interface PrepareOptions {
  cookbooksDir: string;
  /** name → run list; one run list is recorded as `default` (what `galley bundle RUNLIST` records) */
  runLists: Readonly<Record<string, readonly string[]>>;
  /** Galley's own recipe files (lifecycle built-ins): run, never recorded in the set */
  builtins?: ReadonlySet<string> | undefined;
  /** where prepared bundles are kept (default: the cache, `<cache>/bundles/<id>.tgz`) */
  cacheDir?: string | undefined;
}

/** How many prepared bundles the cache keeps: the least recently used beyond these are removed. */
export const keptPreparedBundles = 200;

/**
 * Resolves a run's cookbooks once. A locked kitchen (cookbooks.yaml and its lock, or a vendored
 * folder with a lock) whose run lists name only cookbook recipes becomes a bundle, packed exactly
 * as `galley bundle` packs it (every locked cookbook, the lock, the run list as `default`), kept in
 * the cache as `<cache>/bundles/<id>.tgz`, verified and extracted beside it; the hosts compile from
 * the extraction and never read the kitchen again. Any other run (a plain cookbooks folder, a
 * recipe file) gets a `digest:` id over the content of what it runs.
 *
 * @example const prepared = await prepareCookbooks({ cookbooksDir: "cookbooks", runLists: { default: ["web"] } })
 */
export async function prepareCookbooks(options: PrepareOptions): Promise<PreparedCookbooks> {
  const cookbooksDir = path.resolve(options.cookbooksDir);
  const root = path.dirname(cookbooksDir);
  if (Object.values(options.runLists).every((items) => items.length === 0)) {
    throw new GalleyError("USAGE", "the run list is empty", {
      hint: "name recipes to run: galley apply web, galley apply web::db, or galley apply ./site.ts",
    });
  }
  const runLists = recorded(options.runLists, options.builtins);
  const items = Object.values(runLists).flat();
  const locked =
    existsSync(path.join(root, sourcesFileName)) || existsSync(path.join(cookbooksDir, lockFileName));
  if (locked && !items.some(isRecipeFile)) return prepareBundle(root, cookbooksDir, runLists, options);
  return prepareDigest(root, cookbooksDir, runLists, options);
}

/** Whether an id is a bundle id (one `galley bundle` prints), not an unlocked kitchen's digest. */
export function isBundleId(id: string): boolean {
  return /^[0-9a-f]{64}$/.test(id);
}

/** The bundle file the cache keeps for a prepared run's id. */
export function preparedBundleFile(id: string, cache = defaultCacheDir()): string {
  return path.join(cache, "bundles", `${id}.tgz`);
}

async function prepareBundle(
  root: string,
  cookbooksDir: string,
  runLists: Record<string, string[]>,
  options: PrepareOptions,
): Promise<PreparedCookbooks> {
  const [{ kitchenCookbooks }, { createBundle, openBundle }] = await Promise.all([
    import("./kitchen.ts"),
    import("./bundle.ts"),
  ]);
  const cache = path.resolve(options.cacheDir ?? defaultCacheDir());
  // verified against the lock (sources, digests, commits) exactly as every run always was
  const { lock, cookbooks: verified } = await kitchenCookbooks({ root, cookbooksDir });
  if (!lock) throw new Error("a locked kitchen without a lock"); // kitchenCookbooks returns one whenever a lock exists
  await checkRunLists(runLists, cookbooksDir, verified);
  const vendored = existsSync(path.join(cookbooksDir, lockFileName));
  const lockText = await fs.readFile(path.join(vendored ? cookbooksDir : root, lockFileName), "utf8");
  const cookbooks = Object.entries(lock.cookbooks).map(([name, entry]) => ({
    name,
    version: entry.version,
    sha256: entry.sha256,
    dir: vendored ? path.join(cookbooksDir, name) : lockedCookbookDir(root, cache, name, entry),
  }));
  const created = await createBundle(
    { cookbooks, lock: lockText, runLists },
    { dir: path.join(cache, "bundles") },
  );
  // the hosts compile from the verified extraction: nothing of the kitchen is read after this
  const opened = await openBundle(created.file, cache);
  await touch(created.file);
  await prune(path.join(cache, "bundles"), created.id);
  return {
    id: opened.id,
    kind: "bundle",
    cookbooks: await loadCookbooks(opened.cookbooksDir),
    runLists,
    file: created.file,
  };
}

async function prepareDigest(
  root: string,
  cookbooksDir: string,
  runLists: Record<string, string[]>,
  _options: PrepareOptions,
): Promise<PreparedCookbooks> {
  const items = Object.values(runLists).flat();
  const needsCookbooks = items.some((item) => !isRecipeFile(item));
  let cookbooks = new Map<string, Cookbook>();
  let lockText: string | undefined;
  if (existsSync(path.join(root, sourcesFileName)) || existsSync(path.join(cookbooksDir, lockFileName))) {
    const { kitchenCookbooks } = await import("./kitchen.ts");
    const kitchen = await kitchenCookbooks({ root, cookbooksDir });
    cookbooks = kitchen.cookbooks;
    lockText = kitchen.lock ? JSON.stringify(kitchen.lock) : undefined;
  } else if (needsCookbooks || existsSync(cookbooksDir)) {
    cookbooks = await loadCookbooks(cookbooksDir);
  }
  const hash = createHash("sha256").update("galley prepared run 1\n");
  if (lockText !== undefined) hash.update(`lock\0${sha256(lockText)}\n`);
  for (const name of [...cookbooks.keys()].sort()) {
    const cookbook = cookbooks.get(name)!;
    hash.update(`cookbook\0${name}\0${cookbook.version}\0${await cookbookDigest(cookbook.dir)}\n`);
  }
  for (const [name, list] of Object.entries(runLists)) {
    hash.update(`runlist\0${name}\0${JSON.stringify(list)}\n`);
    for (const item of list.filter(isRecipeFile)) hash.update(`file\0${item}\0${await fileDigest(item)}\n`);
  }
  return { id: `digest:${hash.digest("hex")}`, kind: "digest", cookbooks, runLists };
}

// the run lists' own errors (no such cookbook or recipe, a dependency conflict), before anything is packed
async function checkRunLists(
  runLists: Record<string, string[]>,
  cookbooksDir: string,
  cookbooks: Map<string, Cookbook>,
): Promise<void> {
  const { CookbookRunList } = await import("./runlist.ts");
  for (const items of Object.values(runLists))
    await (await CookbookRunList.load(items, cookbooksDir, { cookbooks })).entries();
}

// one run list is `default`, as `galley bundle RUNLIST` records it; Galley's own recipes are not the kitchen's
function recorded(
  lists: Readonly<Record<string, readonly string[]>>,
  builtins: ReadonlySet<string> | undefined,
): Record<string, string[]> {
  const kept = Object.entries(lists)
    .map(([name, items]) => [name, items.filter((item) => !builtins?.has(item))] as const)
    .filter(([, items]) => items.length > 0);
  const distinct = new Set(kept.map(([, items]) => JSON.stringify(items)));
  if (distinct.size === 1) return { default: [...kept[0]![1]] };
  return Object.fromEntries(
    kept.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([name, items]) => [name, [...items]]),
  );
}

/** A run list item that is a recipe file (a path), not `cookbook` or `cookbook::recipe`. */
export function isRecipeFile(item: string): boolean {
  return /\.[cm]?[jt]s$/.test(item) || item.includes("/");
}

async function fileDigest(item: string): Promise<string> {
  try {
    return sha256(await fs.readFile(path.resolve(item)));
  } catch {
    throw new GalleyError("RECIPE_NOT_FOUND", `no recipe file ${item}`, { hint: "check the path" });
  }
}

// a use counts as recent: pruning removes the bundles least recently run
async function touch(file: string): Promise<void> {
  const now = new Date();
  await fs.utimes(file, now, now).catch(() => {});
}

/** Keeps the `keptPreparedBundles` most recently used bundles of the cache (and their extractions). */
async function prune(dir: string, keep: string): Promise<void> {
  const names = (await fs.readdir(dir).catch(() => [] as string[])).filter((n) =>
    /^[0-9a-f]{64}\.tgz$/.test(n),
  );
  if (names.length <= keptPreparedBundles) return;
  const dated = await Promise.all(
    names.map(async (name) => ({
      name,
      used: (await fs.stat(path.join(dir, name)).catch(() => undefined))?.mtimeMs ?? 0,
    })),
  );
  dated.sort((a, b) => b.used - a.used);
  for (const { name } of dated.slice(keptPreparedBundles)) {
    const id = name.slice(0, 64);
    if (id === keep) continue;
    await fs.rm(path.join(dir, name), { force: true });
    await fs.rm(path.join(dir, id), { recursive: true, force: true });
  }
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}
