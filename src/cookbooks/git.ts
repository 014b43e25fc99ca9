import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { GalleyError } from "../core/errors.ts";
import { replaceDir } from "../hosts/atomic-write.ts";
import { git, gitEnv, mirrorPath, syncMirror } from "../sources/mirror.ts";
import { parseCookbookMetadata } from "./cookbook.ts";
import { cookbookDigest } from "./digest.ts";
import { recordOrigin } from "./origin.ts";
import type { Candidate } from "./resolve.ts";
import { describeSource, type GitSource, normalizeSubdir } from "./sources.ts";
import { isVersion, sortVersions } from "./versions.ts";

/** Galley's cache folder: $GALLEY_CACHE_DIR, else $XDG_CACHE_HOME/galley, else ~/.cache/galley. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GALLEY_CACHE_DIR) return path.resolve(env.GALLEY_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return path.join(path.resolve(env.XDG_CACHE_HOME), "galley");
  return path.join(os.homedir(), ".cache", "galley");
}

/** Where a fetched cookbook lives in the cache: `<cache>/cookbooks/<name>-<version>-<sha256 prefix>`. */
export function cachedCookbookDir(cache: string, name: string, version: string, sha256: string): string {
  return path.join(cache, "cookbooks", `${name}-${version}-${sha256.slice(0, 12)}`);
}

/** One git source of one cookbook: what git is asked for, and what errors name. */
export interface GitOrigin {
  name: string;
  source: GitSource;
  /** the URL or absolute path given to git */
  url: string;
  /** `cookbooks.yaml:LINE` of the cookbook's entry */
  where: string;
}

/** The state of one fetching operation: each repository is fetched at most once in it. */
export interface GitSession {
  cache: string;
  log: (line: string) => void;
  mirrors: Map<string, Promise<string>>;
}

/** A session over a cache folder; `log` receives progress lines. */
export function gitSession(cache: string, log: (line: string) => void = () => {}): GitSession {
  return { cache, log, mirrors: new Map() };
}

/** The cache's bare mirror of the origin's repository: cloned the first time, fetched once per session. */
export function mirror(session: GitSession, origin: GitOrigin): Promise<string> {
  let pending = session.mirrors.get(origin.url);
  if (!pending) {
    pending = updateMirror(session, origin);
    session.mirrors.set(origin.url, pending);
  }
  return pending;
}

function updateMirror(session: GitSession, origin: GitOrigin): Promise<string> {
  const dir = mirrorPath(path.join(session.cache, "git"), origin.url);
  session.log(`fetching ${origin.name} from ${origin.url}`);
  return syncMirror(dir, origin.url, (_command, reason) => unreachable(origin, reason));
}

/** A commit of a repository and what named it ("tag v1.2.0", "branch main"). */
export interface Revision {
  commit: string;
  label: string;
}

/** The commit the source's tag, branch or ref names now; an error naming what exists when it names nothing. */
export async function pinnedRevision(mirrorDir: string, origin: GitOrigin): Promise<Revision> {
  const { tag, branch, ref } = origin.source;
  const [kind, name, spec] =
    tag !== undefined
      ? ["tag", tag, `refs/tags/${tag}`]
      : branch !== undefined
        ? ["branch", branch, `refs/heads/${branch}`]
        : ["ref", ref!, ref!];
  const commit = await revParse(mirrorDir, spec);
  if (commit) return { commit, label: `${kind} ${name}` };
  const known =
    kind === "ref"
      ? []
      : await refNames(mirrorDir, kind === "tag" ? "refs/tags" : "refs/heads").catch(() => []);
  throw new GalleyError(
    "SOURCE_INVALID",
    `${origin.where}: cookbook ${origin.name}: ${kind} ${name} does not exist in ${origin.url}`,
    {
      hint:
        kind === "ref"
          ? `give a commit, tag or branch that exists there (git ls-remote ${origin.url})`
          : known.length
            ? `${kind === "tag" ? "tags" : "branches"} there: ${known.slice(-12).join(", ")}`
            : `that repository has no ${kind === "tag" ? "tags" : "branches"}: check the git: URL`,
    },
  );
}

/** The commit a revision name resolves to now, or undefined. */
export async function revParse(mirrorDir: string, spec: string): Promise<string | undefined> {
  const result = await git(["rev-parse", "--verify", "--quiet", `${spec}^{commit}`], mirrorDir);
  return result.ok ? result.stdout.trim() : undefined;
}

/** The repository's tags that name versions (`v1.2.0` or `1.2.0`), with their commits. */
export async function versionTags(
  mirrorDir: string,
): Promise<{ tag: string; version: string; commit: string }[]> {
  const format = "%(refname:strip=2)%00%(objectname)%00%(*objectname)";
  const result = await git(["for-each-ref", `--format=${format}`, "refs/tags"], mirrorDir);
  const tags = new Map<string, { tag: string; version: string; commit: string }>();
  for (const line of result.stdout.split("\n")) {
    const [tag, object, peeled] = line.split("\0");
    if (!tag || !object) continue;
    const version = tag.replace(/^v/, "");
    // an annotated tag's commit is its peeled object
    if (isVersion(version) && !tags.has(version))
      tags.set(version, { tag, version, commit: peeled || object });
  }
  return [...tags.values()];
}

/** The candidates of a git source, highest first: its pinned revision, or every version tag (checked against cookbook.yaml). */
export async function gitCandidates(session: GitSession, origin: GitOrigin): Promise<Candidate[]> {
  const dir = await mirror(session, origin);
  const { tag, branch, ref } = origin.source;
  if (tag !== undefined || branch !== undefined || ref !== undefined) {
    const revision = await pinnedRevision(dir, origin);
    return [await candidateAt(dir, origin, revision)];
  }
  const tags = await versionTags(dir);
  if (tags.length === 0) {
    throw new GalleyError(
      "SOURCE_INVALID",
      `${origin.where}: cookbook ${origin.name}: ${origin.url} has no version tags (like v1.2.0 or 1.2.0)`,
      { hint: "tag its releases with their versions, or pin the source with tag:, branch: or ref:" },
    );
  }
  const candidates: Candidate[] = [];
  // best (highest) first: resolution takes the first candidate that fits
  const newestFirst = sortVersions(tags.map((t) => t.version))
    .reverse()
    .map((version) => tags.find((t) => t.version === version)!);
  for (const { tag: name, version, commit } of newestFirst) {
    const candidate = await candidateAt(dir, origin, { commit, label: `tag ${name}` });
    if (candidate.version !== version) {
      throw new GalleyError(
        "SOURCE_INVALID",
        `${origin.where}: cookbook ${origin.name}: tag ${name} of ${origin.url} holds version ${candidate.version} in its cookbook.yaml`,
        {
          hint: `a version tag and the cookbook.yaml version at it must agree: fix the tag ${name} or the version`,
        },
      );
    }
    candidates.push(candidate);
  }
  return candidates;
}

/** The candidate a commit of a git source offers: its cookbook.yaml's version and depends. */
export async function candidateAt(dir: string, origin: GitOrigin, revision: Revision): Promise<Candidate> {
  const metadata = await readMetadata(dir, origin, revision);
  if (metadata.name !== origin.name) {
    throw new GalleyError(
      "SOURCE_INVALID",
      `${origin.where}: cookbooks.yaml names it ${origin.name}, but ${origin.url} (${revision.label}) holds cookbook ${metadata.name}`,
      { hint: `rename the entry to ${metadata.name}, or point it at the ${origin.name} cookbook (subdir:?)` },
    );
  }
  return {
    name: origin.name,
    version: metadata.version,
    depends: metadata.depends,
    source: origin.source,
    commit: revision.commit,
    label: revision.label,
  };
}

async function readMetadata(dir: string, origin: GitOrigin, revision: Revision) {
  const subdir = normalizeSubdir(origin.source.subdir ?? "");
  const file = subdir ? `${subdir}/cookbook.yaml` : "cookbook.yaml";
  const result = await git(["cat-file", "blob", `${revision.commit}:${file}`], dir);
  if (!result.ok) {
    const missingDir = subdir && !(await git(["cat-file", "-e", `${revision.commit}:${subdir}`], dir)).ok;
    const top = await git(["ls-tree", "-d", "--name-only", revision.commit], dir);
    throw new GalleyError(
      "SOURCE_INVALID",
      missingDir
        ? `${origin.where}: cookbook ${origin.name}: subdir ${subdir} does not exist at ${revision.label} of ${origin.url}`
        : `${origin.where}: cookbook ${origin.name}: ${origin.url} has no ${file} at ${revision.label}`,
      {
        hint: missingDir
          ? `check subdir: in cookbooks.yaml; folders at the top of that repository: ${top.stdout.split("\n").filter(Boolean).join(", ") || "(none)"}`
          : "point the source at a cookbook: a folder with cookbook.yaml (subdir: for a repository of several)",
      },
    );
  }
  return parseMetadata(result.stdout, `${origin.url} (${revision.label}): ${file}`);
}

// errors name the repository and revision, not a file on this machine
function parseMetadata(text: string, label: string) {
  return parseCookbookMetadata(label, text, "SOURCE_INVALID");
}

/**
 * Exports the cookbook's folder at a commit into the cache (`git archive` of the subdir's tree, so the
 * subdir is stripped) and returns where it is and its digest. An existing cache copy is reused when its
 * content is intact and replaced when it was modified.
 */
export async function exportCookbook(
  session: GitSession,
  dir: string,
  origin: GitOrigin,
  commit: string,
  version: string,
): Promise<{ dir: string; sha256: string }> {
  const root = path.join(session.cache, "cookbooks");
  await fs.mkdir(root, { recursive: true });
  const temp = await fs.mkdtemp(path.join(root, ".export-"));
  try {
    const subdir = normalizeSubdir(origin.source.subdir ?? "");
    await archive(dir, subdir ? `${commit}:${subdir}` : commit, temp);
    const sha256 = await cookbookDigest(temp);
    const target = cachedCookbookDir(session.cache, origin.name, version, sha256);
    // applying checks the lock's commit against this record: the content is this commit's export
    const exported = { commit, subdir };
    if ((await exists(target)) && (await cookbookDigest(target)) === sha256) {
      await recordOrigin(target, sha256, exported);
      return { dir: target, sha256 };
    }
    await replaceDir(temp, target);
    await recordOrigin(target, sha256, exported);
    return { dir: target, sha256 };
  } finally {
    await fs.rm(temp, { recursive: true, force: true });
  }
}

async function archive(gitDir: string, treeish: string, into: string): Promise<void> {
  const { x } = await import("tar");
  const child = spawn("git", [`--git-dir=${gitDir}`, "archive", "--format=tar", treeish], {
    env: gitEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  await pipeline(child.stdout, x({ cwd: into }));
  const code = await exited;
  if (code !== 0) throw new Error(`git archive ${treeish} failed: ${stderr.trim()}`);
}

/** The names of refs under a prefix (`refs/tags`), sorted by git. */
async function refNames(mirrorDir: string, prefix: string): Promise<string[]> {
  const result = await git(["for-each-ref", "--format=%(refname:strip=2)", prefix], mirrorDir);
  return result.stdout.split("\n").filter(Boolean);
}

function unreachable(origin: GitOrigin, reason: string): GalleyError {
  return new GalleyError(
    "SOURCE_INVALID",
    `${origin.where}: cookbook ${origin.name}: cannot fetch ${origin.url}: ${reason}`,
    {
      hint: `check the git: URL of ${origin.name} in cookbooks.yaml (${describeSource(origin.source)}) and that this machine can reach it: git ls-remote ${origin.url}`,
    },
  );
}

export { git };

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}
