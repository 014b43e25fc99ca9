import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import { readYamlText } from "../core/yaml.ts";
import { type Cookbook, loadCookbook, parseYamlFile } from "./cookbook.ts";
import { cookbookDigest } from "./digest.ts";
import { cachedCookbookDir } from "./git.ts";
import { originFileOf, readOrigin, recordsOrigin } from "./origin.ts";
import {
  type CookbookSource,
  canonicalSource,
  cookbookNameSchema,
  describeSource,
  type GitSource,
  isGitSource,
  normalizeSubdir,
  type Sources,
  sourceSchema,
} from "./sources.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

/** One locked cookbook: the exact version, where it came from, and the content it must have. */
export interface LockedCookbook {
  version: string;
  /** as in cookbooks.yaml; a path is relative to the kitchen */
  source: CookbookSource;
  /** git sources: the full commit */
  commit?: string;
  /** cookbookDigest of its content */
  sha256: string;
  depends: Record<string, string>;
}

/** cookbooks.lock: every cookbook of the kitchen at one version, pinned by commit and content hash. */
export interface Lockfile {
  lockfileVersion: 1;
  /** sha256 of cookbooks.yaml's parsed content when it was locked (see sourcesDigest) */
  sourcesSha256: string;
  /** cookbook name → its lock, sorted by name */
  cookbooks: Record<string, LockedCookbook>;
}

/** The name of the lock file, beside cookbooks.yaml (and in a vendored folder). */
export const lockFileName = "cookbooks.lock";

const sha256Schema = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "a sha256 in hex (64 characters)"));

const lockSchema = v.strictObject({
  lockfileVersion: v.literal(1, "1 (the only lock format this galley knows)"),
  sourcesSha256: sha256Schema,
  cookbooks: v.record(
    cookbookNameSchema,
    v.pipe(
      v.strictObject({
        version: v.string(),
        source: sourceSchema,
        commit: v.optional(v.pipe(v.string(), v.regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "a full commit id"))),
        sha256: sha256Schema,
        depends: v.record(v.string(), v.string()),
      }),
      // a git cookbook is pinned by its commit, a path cookbook by its content alone
      v.check(
        (entry) => "git" in entry.source === (entry.commit !== undefined),
        "a git source's entry has its commit, a path source's has none",
      ),
    ),
  ),
});

/** The lock of resolved cookbooks, in stable order. */
export function lockfileOf(sources: Sources, entries: ReadonlyMap<string, LockedCookbook>): Lockfile {
  const cookbooks: Record<string, LockedCookbook> = {};
  for (const name of [...entries.keys()].sort()) {
    const entry = entries.get(name)!;
    cookbooks[name] = {
      version: entry.version,
      source: relativeSource(sources.root, entry.source),
      ...(entry.commit === undefined ? {} : { commit: entry.commit }),
      sha256: entry.sha256,
      depends: Object.fromEntries(Object.entries(entry.depends).sort(([a], [b]) => (a < b ? -1 : 1))),
    };
  }
  return { lockfileVersion: 1, sourcesSha256: sources.sha256, cookbooks };
}

function relativeSource(root: string, source: CookbookSource): CookbookSource {
  const canonical = canonicalSource(source);
  if (isGitSource(canonical) || !path.isAbsolute(canonical.path)) return canonical;
  const relative = path.relative(root, canonical.path).split(path.sep).join("/");
  return { ...canonical, path: relative.startsWith("..") ? relative : `./${relative}` };
}

/** The lock's text: indented JSON with keys in a fixed order and a trailing newline. */
export function formatLock(lock: Lockfile): string {
  return `${JSON.stringify(lock, null, 2)}\n`;
}

/** Reads and validates a cookbooks.lock; undefined when there is none. Errors name the file, line and field. */
export async function readLock(file: string): Promise<Lockfile | undefined> {
  const text = await readYamlText(file, { code: "LOCK_INVALID" });
  if (text === undefined) return undefined;
  return parseLock(file, text);
}

/**
 * Validates a lock's text; `label` names it in errors (a path, or `bundle.tgz: cookbooks.lock`), with
 * `code` (LOCK_INVALID unless given) and `hint`.
 */
export function parseLock(
  label: string,
  text: string,
  code: "LOCK_INVALID" | "BUNDLE_INVALID" = "LOCK_INVALID",
  hint = "cookbooks.lock is written by galley: run galley cookbooks install rather than editing it",
): Lockfile {
  return parseYamlFile(label, text, lockSchema, code, hint) as Lockfile;
}

/** Writes the lock atomically (temp file + rename); false when the file already said exactly this. */
export async function writeLock(file: string, lock: Lockfile): Promise<boolean> {
  const text = formatLock(lock);
  if ((await fs.readFile(file, "utf8").catch(() => undefined)) === text) return false;
  await writeFileAtomic(file, text);
  return true;
}

/** Where a locked cookbook's content is: its folder (path sources) or its cache copy (git sources). */
export function lockedCookbookDir(root: string, cache: string, name: string, entry: LockedCookbook): string {
  return isGitSource(entry.source)
    ? cachedCookbookDir(cache, name, entry.version, entry.sha256)
    : path.resolve(root, entry.source.path);
}

/** What a verified copy is, for messages and hints: the kitchen's own folder, the cache, or a vendored folder. */
export type CopyKind = "path" | "cache" | "vendor";

/**
 * Loads a locked cookbook from `dir` and checks that its content is exactly what the lock pins
 * (same digest, name and version); the error says what to run for each kind of copy.
 */
export async function verifyLocked(
  name: string,
  entry: LockedCookbook,
  dir: string,
  kind: CopyKind,
): Promise<Cookbook> {
  const cookbook = await loadCookbook(dir).catch(() => undefined);
  if (!cookbook) throw missing(name, entry, dir, kind);
  const sha256 = await cookbookDigest(dir);
  const difference = lockDifference(name, entry, cookbook, sha256);
  if (difference) throw modified(name, entry, dir, kind, difference);
  if (isGitSource(entry.source) && kind !== "path") await checkCommit(name, entry, dir, kind);
  return cookbook;
}

/**
 * A git cookbook's copy must be recorded as the export of the lock's commit (see origin.ts): the
 * digest alone cannot tell that the lock's `commit` was not edited, or that the copy came from elsewhere.
 */
async function checkCommit(name: string, entry: LockedCookbook, dir: string, kind: "cache" | "vendor") {
  const source = entry.source as GitSource;
  const locked = { commit: entry.commit ?? "", subdir: normalizeSubdir(source.subdir ?? "") };
  const record = await readOrigin(dir);
  if (recordsOrigin(record, entry.sha256, locked)) return;
  const copy = kind === "cache" ? "the cached copy" : "the vendored copy";
  const recorded = record?.sha256 === entry.sha256 ? record.commits.map((c) => c.commit.slice(0, 12)) : [];
  const from = recorded.length
    ? `was exported from commit ${recorded.join(", ")}, not from the locked commit ${locked.commit}`
    : `does not record the commit it came from (${originFileOf(dir)}); the lock pins commit ${locked.commit}`;
  throw new GalleyError(
    "LOCK_INVALID",
    `${copy} of ${name} ${entry.version} in ${dir} ${from}${locked.subdir ? ` (subdir ${locked.subdir})` : ""}`,
    {
      hint:
        kind === "cache"
          ? `galley cookbooks install exports the locked commit again (and refuses it if its content differs from the lock); if cookbooks.lock was edited by hand, galley cookbooks update ${name} re-locks it from its source`
          : "vendor again from the kitchen: galley cookbooks vendor DIR",
    },
  );
}

/**
 * What differs between a copy and its lock entry, in words: the digests (expected, then actual) when the
 * content changed, else the cookbook.yaml field that disagrees; undefined when they agree.
 */
export function lockDifference(
  name: string,
  entry: Pick<LockedCookbook, "version" | "sha256">,
  cookbook: Pick<Cookbook, "name" | "version">,
  sha256: string,
): string | undefined {
  if (sha256 !== entry.sha256) {
    // 12 characters tell two digests apart, unless they share them
    const size = sha256.slice(0, 12) === entry.sha256.slice(0, 12) ? 64 : 12;
    const short = (digest: string) => `${digest.slice(0, size)}${size < 64 ? "…" : ""}`;
    return `(locked sha256 ${short(entry.sha256)}, now ${short(sha256)})`;
  }
  if (cookbook.name !== name)
    return `(its cookbook.yaml says name: ${cookbook.name}, the lock names it ${name})`;
  if (cookbook.version !== entry.version) {
    return `(its cookbook.yaml says version ${cookbook.version}, the lock pins ${entry.version}; the content is unchanged)`;
  }
  return undefined;
}

function missing(name: string, entry: LockedCookbook, dir: string, kind: CopyKind): GalleyError {
  const what = `${name} ${entry.version}`;
  if (kind === "path") {
    return new GalleyError(
      "LOCK_INVALID",
      `cookbooks.lock is stale: cookbook ${name} (${describeSource(entry.source)}) has no cookbook.yaml at ${dir}`,
      { hint: "fix the path in cookbooks.yaml, then galley cookbooks install re-locks it" },
    );
  }
  if (kind === "cache") {
    return new GalleyError("LOCK_INVALID", `cookbook ${what} is not in the cache (${dir})`, {
      hint: "run galley cookbooks install to fetch it",
    });
  }
  return new GalleyError("LOCK_INVALID", `the vendored folder has no cookbook ${what} (${dir})`, {
    hint: "vendor again from the kitchen: galley cookbooks vendor DIR",
  });
}

function modified(name: string, entry: LockedCookbook, dir: string, kind: CopyKind, hashes: string) {
  const changed = hashes.startsWith("(locked sha256");
  if (kind === "path") {
    return new GalleyError(
      "LOCK_INVALID",
      `cookbooks.lock is stale: cookbook ${name} (${describeSource(entry.source)}) ${changed ? "changed since it was locked" : "does not match it"} ${hashes}`,
      { hint: "galley cookbooks install re-locks it (review the change first: the lock is what runs)" },
    );
  }
  if (kind === "cache") {
    return new GalleyError(
      "LOCK_INVALID",
      `the cached copy of ${name} ${entry.version} in ${dir} ${changed ? "was modified" : "does not match cookbooks.lock"} ${hashes}; refusing to use it`,
      { hint: "galley cookbooks install fetches it again" },
    );
  }
  return new GalleyError(
    "LOCK_INVALID",
    `the vendored copy of ${name} ${entry.version} in ${dir} ${changed ? "was modified" : "does not match its cookbooks.lock"} ${hashes}; refusing to use it`,
    { hint: "vendor again from the kitchen: galley cookbooks vendor DIR" },
  );
}
