import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { cookbookDigest } from "./digest.ts";
import {
  cacheDir,
  candidateAt,
  type GitOrigin,
  type GitSession,
  gitSession,
  mirror,
  revParse,
  versionTags,
} from "./git.ts";
import { requireSources } from "./kitchen.ts";
import { type Lockfile, lockFileName, readLock } from "./lock.ts";
import { entryLabel, gitUrl, isGitSource, pathSourceDir, type Sources } from "./sources.ts";
import { satisfies, sortVersions } from "./versions.ts";

// `galley cookbooks outdated` as a function: what each locked cookbook's source offers now.

/** What `outdated` says about one locked cookbook. */
export interface Outdated {
  name: string;
  version: string;
  /** versions newer than the locked one that the source offers */
  newer: string[];
  /** the newest of them every constraint allows (cookbooks.yaml's version:, the locked dependents' depends) */
  allowed?: string;
  /** the constraints that hold the newest version back */
  heldBy?: string[];
  /** the tag cookbooks.yaml pins: newer versions need an edit there */
  tag?: string;
  /** a branch or ref that now names another commit */
  moved?: { label: string; from: string; to: string };
  /** a path cookbook whose content changed since it was locked */
  changed?: boolean;
}

/** How to check: the cache folder (default Galley's) and where progress lines go. */
export interface OutdatedOptions {
  cache?: string | undefined;
  log?: ((line: string) => void) | undefined;
}

/**
 * The locked cookbooks of the kitchen at `root` whose source has moved on: newer version tags, a
 * moved branch or ref, a changed path folder. Up-to-date cookbooks are not listed.
 *
 * @example for (const r of await outdatedCookbooks(kitchen)) console.log(r.name, r.newer)
 */
export async function outdatedCookbooks(root: string, options: OutdatedOptions = {}): Promise<Outdated[]> {
  const sources = await requireSources(root);
  const current = await readLock(path.join(root, lockFileName));
  if (!current) {
    throw new GalleyError("LOCK_INVALID", `no cookbooks.lock beside ${sources.file}`, {
      hint: "run galley cookbooks install",
    });
  }
  const git = gitSession(options.cache ?? cacheDir(), options.log);
  const results: Outdated[] = [];
  for (const name of Object.keys(current.cookbooks)) {
    const result = await checkOutdated(sources, current, git, name);
    if (result.newer.length || result.moved || result.changed) results.push(result);
  }
  return results;
}

// compares with the lock's own source (and the constraints it was locked under)
async function checkOutdated(
  sources: Sources,
  lock: Lockfile,
  git: GitSession,
  name: string,
): Promise<Outdated> {
  const entry = lock.cookbooks[name]!;
  const result: Outdated = { name, version: entry.version, newer: [] };
  const source = entry.source;
  if (!isGitSource(source)) {
    const sha256 = await cookbookDigest(pathSourceDir(sources.root, source)).catch(() => "");
    if (sha256 !== entry.sha256) result.changed = true;
    return result;
  }
  const origin = { name, source, url: gitUrl(sources.root, source), where: entryLabel(sources, name) };
  const dir = await mirror(git, origin);
  if (source.branch !== undefined || source.ref !== undefined) {
    const now = await revParse(
      dir,
      source.branch !== undefined ? `refs/heads/${source.branch}` : source.ref!,
    );
    const label = source.branch !== undefined ? `branch ${source.branch}` : `ref ${source.ref}`;
    if (now && now !== entry.commit) result.moved = { label, from: entry.commit ?? "", to: now };
    return result;
  }
  const newer = (await offeredVersions(dir, origin)).filter((v) => satisfies(v, `>${entry.version}`));
  result.newer = sortVersions(newer);
  if (source.tag !== undefined) {
    if (newer.length) result.tag = source.tag;
    return result;
  }
  const constraints = constraintsOn(lock, name);
  const allowed = [...result.newer]
    .reverse()
    .find((v) => constraints.every((c) => satisfies(v, c.constraint)));
  if (allowed !== undefined) result.allowed = allowed;
  const newest = result.newer.at(-1);
  if (newest !== undefined && result.allowed !== newest)
    result.heldBy = constraints.filter((c) => !satisfies(newest, c.constraint)).map((c) => c.by);
  return result;
}

// the versions a repository's tags offer for this cookbook; a tag whose cookbook.yaml disagrees (a tag of
// another cookbook in the same repository) is not one of them
async function offeredVersions(dir: string, origin: GitOrigin): Promise<string[]> {
  const { tag: _pinned, ...unpinned } = origin.source;
  const versions: string[] = [];
  for (const { tag, version, commit } of await versionTags(dir)) {
    const candidate = await candidateAt(
      dir,
      { ...origin, source: unpinned },
      { commit, label: `tag ${tag}` },
    ).catch(() => undefined);
    if (candidate?.version === version) versions.push(version);
  }
  return versions;
}

function constraintsOn(lock: Lockfile, name: string): { constraint: string; by: string }[] {
  const own = lock.cookbooks[name]!.source.version;
  const constraints = own === undefined ? [] : [{ constraint: own, by: `cookbooks.yaml requires ${own}` }];
  for (const [other, entry] of Object.entries(lock.cookbooks)) {
    const constraint = entry.depends[name];
    if (constraint !== undefined && other !== name)
      constraints.push({ constraint, by: `${other} ${entry.version} requires ${constraint}` });
  }
  return constraints;
}
