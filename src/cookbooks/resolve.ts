import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { loadCookbook } from "./cookbook.ts";
import { cookbookDigest } from "./digest.ts";
import {
  cachedCookbookDir,
  exportCookbook,
  type GitOrigin,
  type GitSession,
  gitCandidates,
  mirror,
  revParse,
} from "./git.ts";
import { type LockedCookbook, type Lockfile, lockfileOf } from "./lock.ts";
import { readOrigin, recordsOrigin } from "./origin.ts";
import {
  type CookbookSource,
  entryLabel,
  gitUrl,
  isGitSource,
  normalizeSubdir,
  type PathSource,
  pathSourceDir,
  type Sources,
  sameOrigin,
} from "./sources.ts";
import { satisfies, sortVersions } from "./versions.ts";

/** One version of a cookbook that resolution may choose. */
export interface Candidate {
  name: string;
  version: string;
  depends: Record<string, string>;
  source: CookbookSource;
  /** git sources: the commit */
  commit?: string;
  /** what named the commit: "tag v1.2.0", "branch main" */
  label?: string;
  /** known when locked or for path sources */
  sha256?: string;
  /** path sources: the folder */
  dir?: string;
}

/** A constraint on a cookbook and the chain that imposed it (`["app 2.0.0", "mid 1.0.0"]`; empty: cookbooks.yaml itself). */
export interface Requirement {
  name: string;
  constraint: string;
  via: string[];
}

/** What resolution works on: every cookbook's candidates, best first, and cookbooks.yaml's constraints. */
export interface Problem {
  /** cookbooks.yaml, for messages */
  file: string;
  /** cookbook name → candidates in order of preference */
  candidates: ReadonlyMap<string, readonly Candidate[]>;
  /** cookbook name → cookbooks.yaml's `version:` */
  constraints: ReadonlyMap<string, string>;
}

// a search this long means the constraints are hopeless, not that more patience would help
const maxSteps = 100_000;

/**
 * Chooses one candidate per cookbook such that every constraint holds: the first (best) candidate that
 * works, backtracking when a choice's depends make a later one impossible. A conflict is an error that
 * prints every constraint on the cookbook in conflict with the chain that imposed it.
 */
export function solve(problem: Problem): Map<string, Candidate> {
  const order = searchOrder(problem.candidates);
  const assigned = new Map<string, Candidate>();
  const requirements = new Map<string, Requirement[]>();
  for (const [name, constraint] of problem.constraints)
    requirements.set(name, [{ name, constraint, via: [] }]);
  let conflict: { name: string; requirements: Requirement[] } | undefined;
  let steps = 0;

  const search = (index: number): boolean => {
    if (++steps > maxSteps) throw tooHard(problem.file);
    const name = order[index];
    if (name === undefined) return true;
    const on = requirements.get(name) ?? [];
    const via = chainTo(name, on);
    let fits = false;
    for (const candidate of problem.candidates.get(name)!) {
      if (!on.every((r) => satisfies(candidate.version, r.constraint))) continue;
      fits = true;
      const added = dependencies(problem, candidate, via);
      const broken = added.find((r) => {
        const chosen = assigned.get(r.name);
        return chosen !== undefined && !satisfies(chosen.version, r.constraint);
      });
      for (const r of added) requirements.set(r.name, [...(requirements.get(r.name) ?? []), r]);
      assigned.set(name, candidate);
      if (broken) conflict ??= { name: broken.name, requirements: requirements.get(broken.name)! };
      else if (search(index + 1)) return true;
      assigned.delete(name);
      for (const r of added) requirements.set(r.name, requirements.get(r.name)!.slice(0, -1));
    }
    if (!fits) conflict ??= { name, requirements: on };
    return false;
  };

  if (!search(0)) throw conflictError(problem, conflict!);
  return assigned;
}

// dependents before their dependencies, so that every constraint on a cookbook is known when it is chosen
function searchOrder(candidates: ReadonlyMap<string, readonly Candidate[]>): string[] {
  const order: string[] = [];
  const visited = new Set<string>();
  const visit = (name: string) => {
    if (visited.has(name) || !candidates.has(name)) return;
    visited.add(name);
    const deps = new Set(candidates.get(name)!.flatMap((c) => Object.keys(c.depends)));
    for (const dep of [...deps].sort().reverse()) visit(dep);
    order.push(name);
  };
  for (const name of [...candidates.keys()].reverse()) visit(name);
  return order.reverse();
}

// the shortest chain of dependents that led to this cookbook (not through itself)
function chainTo(name: string, on: readonly Requirement[]): string[] {
  const chains = on.filter((r) => r.via.length > 0 && !r.via.some((step) => step.startsWith(`${name} `)));
  chains.sort((a, b) => a.via.length - b.via.length);
  return chains[0]?.via ?? [];
}

function dependencies(problem: Problem, candidate: Candidate, via: string[]): Requirement[] {
  const step = `${candidate.name} ${candidate.version}`;
  return Object.entries(candidate.depends).map(([name, constraint]) => {
    if (!problem.candidates.has(name)) {
      throw new GalleyError(
        "COOKBOOK_NOT_FOUND",
        `${problem.file}: ${step} depends on ${name} ${constraint}, which cookbooks.yaml does not name`,
        { hint: `add it under cookbooks: ${name}: { git: URL } or ${name}: { path: ./DIR }` },
      );
    }
    return { name, constraint, via: [...via, step] };
  });
}

function conflictError(problem: Problem, conflict: { name: string; requirements: Requirement[] }) {
  const { name } = conflict;
  const lines = conflict.requirements.map((r) =>
    r.via.length === 0
      ? `  cookbooks.yaml requires ${name} ${r.constraint} (its version:)`
      : `  cookbooks.yaml → ${r.via.join(" → ")} requires ${name} ${r.constraint}`,
  );
  const versions = sortVersions([...new Set(problem.candidates.get(name)!.map((c) => c.version))]);
  lines.push(`  versions of ${name} available: ${versions.join(", ")}`);
  return new GalleyError(
    "DEPENDENCY_CONFLICT",
    `${problem.file}: no version of ${name} satisfies every constraint on it:\n${lines.join("\n")}`,
    {
      hint: `relax one of these constraints (version: in cookbooks.yaml, or depends in a cookbook.yaml), or make a version of ${name} that satisfies them all`,
    },
  );
}

function tooHard(file: string): GalleyError {
  return new GalleyError("DEPENDENCY_CONFLICT", `${file}: no solution found after ${maxSteps} steps`, {
    hint: "pin some cookbooks (tag: or version:) to narrow the choices",
  });
}

/** How resolution treats the current lock. */
export interface ResolveOptions {
  sources: Sources;
  session: GitSession;
  /** the current lock: its versions are kept while they still satisfy every constraint */
  lock?: Lockfile | undefined;
  /** cookbooks to re-resolve regardless of the lock (`galley cookbooks update`) */
  unlock?: ReadonlySet<string> | "all";
}

/**
 * Resolves cookbooks.yaml into a lock: chooses versions (keeping locked ones that still fit), fetches
 * the chosen git commits into the cache, and hashes every cookbook's content.
 */
export async function resolveKitchen(options: ResolveOptions): Promise<Lockfile> {
  const { sources } = options;
  const locked = keptLocks(options);
  const full = new Map<string, Candidate[]>();
  const candidatesOf = async (name: string, preferLocked: boolean): Promise<Candidate[]> => {
    const lockedOne = locked.get(name);
    if (lockedOne && preferLocked) return [lockedOne];
    let list = full.get(name);
    if (!list) {
      list = await loadCandidates(options, name);
      full.set(name, list);
    }
    // still the locked version first: an install moves only what must move
    return lockedOne ? [lockedOne, ...list.filter((c) => c.version !== lockedOne.version)] : list;
  };
  const problem = async (preferLocked: boolean): Promise<Problem> => {
    const candidates = new Map<string, Candidate[]>();
    for (const name of sources.cookbooks.keys()) candidates.set(name, await candidatesOf(name, preferLocked));
    const constraints = new Map<string, string>();
    for (const [name, source] of sources.cookbooks)
      if (source.version !== undefined) constraints.set(name, source.version);
    return { file: sources.file, candidates, constraints };
  };
  let chosen: Map<string, Candidate>;
  try {
    chosen = solve(await problem(true));
  } catch (error) {
    if (locked.size === 0 || (error as GalleyError).code !== "DEPENDENCY_CONFLICT") throw error;
    chosen = solve(await problem(false));
  }
  const entries = new Map<string, LockedCookbook>();
  for (const name of sources.cookbooks.keys())
    entries.set(name, await fetchCandidate(options, chosen.get(name)!));
  return lockfileOf(sources, entries);
}

// locked entries still usable: same origin in cookbooks.yaml, not being updated
function keptLocks(options: ResolveOptions): Map<string, Candidate> {
  const kept = new Map<string, Candidate>();
  if (!options.lock || options.unlock === "all") return kept;
  for (const [name, entry] of Object.entries(options.lock.cookbooks)) {
    const source = options.sources.cookbooks.get(name);
    if (!source || !isGitSource(source) || options.unlock?.has(name) || !sameOrigin(source, entry.source))
      continue;
    kept.set(name, {
      name,
      version: entry.version,
      depends: entry.depends,
      source,
      sha256: entry.sha256,
      ...(entry.commit === undefined ? {} : { commit: entry.commit }),
    });
  }
  return kept;
}

async function loadCandidates(options: ResolveOptions, name: string): Promise<Candidate[]> {
  const source = options.sources.cookbooks.get(name)!;
  if (isGitSource(source)) return gitCandidates(options.session, originOf(options.sources, name));
  return [await pathCandidate(options.sources, name, source)];
}

/** The git origin of a cookbooks.yaml entry. */
export function originOf(sources: Sources, name: string): GitOrigin {
  const source = sources.cookbooks.get(name)!;
  if (!isGitSource(source)) throw new Error(`${name} is not a git source`);
  return { name, source, url: gitUrl(sources.root, source), where: entryLabel(sources, name) };
}

async function pathCandidate(sources: Sources, name: string, source: PathSource): Promise<Candidate> {
  const dir = pathSourceDir(sources.root, source);
  const cookbook = await loadCookbook(dir);
  if (!cookbook) {
    throw new GalleyError(
      "SOURCE_INVALID",
      `${entryLabel(sources, name)}: cookbook ${name}: ${path.join(dir, "cookbook.yaml")} does not exist`,
      { hint: `check path: of ${name} in cookbooks.yaml; it names a cookbook folder (with cookbook.yaml)` },
    );
  }
  if (cookbook.name !== name) {
    throw new GalleyError(
      "SOURCE_INVALID",
      `${entryLabel(sources, name)}: cookbooks.yaml names it ${name}, but ${path.join(dir, "cookbook.yaml")} says name: ${cookbook.name}`,
      { hint: `rename the entry to ${cookbook.name}, or point path: at the ${name} cookbook` },
    );
  }
  return { name, version: cookbook.version, depends: cookbook.depends, source, dir };
}

// puts the chosen version where runs find it (the cache for git) and hashes its content
async function fetchCandidate(options: ResolveOptions, candidate: Candidate): Promise<LockedCookbook> {
  const { name, version, depends, source } = candidate;
  if (!isGitSource(source)) {
    return { version, source, sha256: await cookbookDigest(candidate.dir!), depends };
  }
  const commit = candidate.commit!;
  const { session, sources } = options;
  if (candidate.sha256 !== undefined) {
    const cached = cachedCookbookDir(session.cache, name, version, candidate.sha256);
    const intact = await cookbookDigest(cached).then(
      (sha256) => sha256 === candidate.sha256,
      () => false,
    );
    // a copy not recorded as the locked commit's export is exported again (and checked against the lock)
    const fromCommit = { commit, subdir: normalizeSubdir(source.subdir ?? "") };
    if (intact && recordsOrigin(await readOrigin(cached), candidate.sha256, fromCommit))
      return { version, source, commit, sha256: candidate.sha256, depends };
  }
  const origin = originOf(sources, name);
  const dir = await mirror(session, origin);
  if ((await revParse(dir, commit)) === undefined) {
    throw new GalleyError(
      "SOURCE_INVALID",
      `${origin.where}: cookbook ${name}: the locked commit ${commit} (${version}) no longer exists in ${origin.url}`,
      { hint: `its history was rewritten: galley cookbooks update ${name} locks what is there now` },
    );
  }
  const exported = await exportCookbook(session, dir, origin, commit, version);
  if (candidate.sha256 !== undefined && exported.sha256 !== candidate.sha256) {
    throw new GalleyError(
      "LOCK_INVALID",
      `cookbooks.lock: ${name} ${version} at commit ${commit} has sha256 ${exported.sha256}, but the lock says ${candidate.sha256}`,
      {
        hint: `the lock was edited or the commit's content differs: galley cookbooks update ${name} re-locks it`,
      },
    );
  }
  return { version, source, commit, sha256: exported.sha256, depends };
}
