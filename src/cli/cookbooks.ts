import * as fs from "node:fs/promises";
import * as path from "node:path";
import { cookbookDigest, ignoredNames } from "../cookbooks/digest.ts";
import {
  cacheDir,
  candidateAt,
  type GitOrigin,
  type GitSession,
  gitSession,
  mirror,
  revParse,
  versionTags,
} from "../cookbooks/git.ts";
import { lockedKitchen, requireSources } from "../cookbooks/kitchen.ts";
import {
  formatLock,
  type LockedCookbook,
  type Lockfile,
  lockFileName,
  readLock,
  verifyLocked,
  writeLock,
} from "../cookbooks/lock.ts";
import { recordOrigin } from "../cookbooks/origin.ts";
import { resolveKitchen } from "../cookbooks/resolve.ts";
import {
  describeSource,
  entryLabel,
  gitUrl,
  isGitSource,
  normalizeSubdir,
  pathSourceDir,
  type Sources,
} from "../cookbooks/sources.ts";
import { satisfies, sortVersions } from "../cookbooks/versions.ts";
import { errorMessage, exitCodes, GalleyError } from "../core/errors.ts";
import { paint, writeJson } from "./output.ts";

const options = {
  kitchen: {
    type: "string",
    description: "the kitchen folder, holding cookbooks.yaml (default: the current folder)",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  kitchen?: string;
  json: boolean;
}

const subcommands = ["install", "update", "outdated", "list", "vendor"] as const;

/** `galley cookbooks install|update|outdated|list|vendor`: cookbooks.yaml, its lock and the cache. */
export const cookbooksCommand = {
  summary: "resolve the cookbooks named in cookbooks.yaml, lock, fetch, list and vendor them",
  usage: "install | update [NAME…] | outdated | list | vendor DIR   [--kitchen DIR] [--json]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [subcommand, ...rest] = positionals;
    const root = path.resolve(values.kitchen ?? ".");
    switch (subcommand) {
      case "install":
        noArguments(subcommand, rest);
        return lock(values, root, undefined);
      case "update":
        return lock(values, root, rest.length ? new Set(rest) : "all");
      case "outdated":
        noArguments(subcommand, rest);
        return outdated(values, root);
      case "list":
        noArguments(subcommand, rest);
        return list(values, root);
      case "vendor":
        return vendor(values, root, rest);
      default:
        throw new GalleyError(
          "USAGE",
          subcommand === undefined
            ? "galley cookbooks: which subcommand?"
            : `unknown subcommand "${subcommand}"`,
          { hint: `galley cookbooks ${subcommands.join(" | ")} (see galley cookbooks --help)` },
        );
    }
  },
};

function noArguments(subcommand: string, rest: string[]): void {
  if (rest.length === 0) return;
  throw new GalleyError(
    "USAGE",
    `galley cookbooks ${subcommand} takes no arguments (got ${rest.join(" ")})`,
    subcommand === "install" ? { hint: "to re-resolve some cookbooks: galley cookbooks update NAME…" } : {},
  );
}

function session(values: Values): GitSession {
  const log = values.json
    ? () => {}
    : (line: string) => process.stderr.write(`${paint("gray", line, process.stderr)}\n`);
  return gitSession(cacheDir(), log);
}

// install (unlock undefined) keeps what is locked; update re-resolves the cookbooks named (or all)
async function lock(values: Values, root: string, unlock: ReadonlySet<string> | "all" | undefined) {
  const sources = await requireSources(root);
  if (unlock instanceof Set) {
    for (const name of unlock) {
      if (!sources.cookbooks.has(name)) {
        throw new GalleyError(
          "COOKBOOK_NOT_FOUND",
          `galley cookbooks update: ${sources.file} does not name ${name}`,
          {
            hint: `cookbooks there: ${[...sources.cookbooks.keys()].join(", ") || "(none)"}`,
          },
        );
      }
    }
  }
  const lockFile = path.join(root, lockFileName);
  const previous = await readLock(lockFile).catch((error: unknown) => {
    // install is the way out of a broken lock: say so, and resolve as if there were none
    if (!values.json) process.stderr.write(`ignoring the unreadable ${lockFile}: ${errorMessage(error)}\n`);
    return undefined;
  });
  const next = await resolveKitchen({
    sources,
    session: session(values),
    lock: previous,
    ...(unlock === undefined ? {} : { unlock }),
  });
  const written = await writeLock(lockFile, next);
  const rows = Object.entries(next.cookbooks).map(([name, entry]) => ({
    name,
    ...entry,
    previous: previous?.cookbooks[name] ? pick(previous.cookbooks[name]) : null,
  }));
  const removed = Object.keys(previous?.cookbooks ?? {}).filter((name) => !(name in next.cookbooks));
  if (values.json) {
    writeJson({ status: "ok", lockfile: lockFile, written, cookbooks: rows, removed });
    return exitCodes.ok;
  }
  const head = written ? `locked ${rows.length} cookbooks in ${lockFile}` : `${lockFile} is up to date`;
  process.stdout.write(`${head}\n`);
  for (const row of rows)
    process.stdout.write(`  ${formatEntry(row.name, row)}${change(row, row.previous)}\n`);
  for (const name of removed) process.stdout.write(`  ${name} removed (cookbooks.yaml no longer names it)\n`);
  return exitCodes.ok;
}

type Previous = Pick<LockedCookbook, "version" | "commit" | "sha256">;

function pick(entry: LockedCookbook): Previous {
  const { version, commit, sha256 } = entry;
  return { version, ...(commit === undefined ? {} : { commit }), sha256 };
}

function change(entry: LockedCookbook, previous: Previous | null): string {
  if (!previous) return paint("green", "  (new)");
  if (previous.version !== entry.version) return paint("yellow", `  (was ${previous.version})`);
  if (previous.commit !== entry.commit)
    return paint("yellow", `  (was commit ${previous.commit?.slice(0, 7) ?? "none"})`);
  if (previous.sha256 !== entry.sha256) return paint("yellow", "  (content changed)");
  return "";
}

/** One lock line: name, version, source, short commit and digest prefix. */
function formatEntry(name: string, entry: LockedCookbook): string {
  const commit = entry.commit ? ` @${entry.commit.slice(0, 7)}` : "";
  return `${name.padEnd(16)} ${entry.version.padEnd(10)} ${describeSource(entry.source)}${commit}  sha256:${entry.sha256.slice(0, 12)}`;
}

async function list(values: Values, root: string): Promise<number> {
  const lockFile = path.join(root, lockFileName);
  const current = await readLock(lockFile);
  if (!current) {
    throw new GalleyError("LOCK_INVALID", `no cookbooks.lock in ${root}`, {
      hint: "run galley cookbooks install",
    });
  }
  const rows = Object.entries(current.cookbooks).map(([name, entry]) => ({ name, ...entry }));
  if (values.json) writeJson({ lockfile: lockFile, cookbooks: rows });
  else for (const row of rows) process.stdout.write(`${formatEntry(row.name, row)}\n`);
  return exitCodes.ok;
}

/** What `outdated` says about one locked cookbook. */
interface Outdated {
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

async function outdated(values: Values, root: string): Promise<number> {
  const sources = await requireSources(root);
  const current = await readLock(path.join(root, lockFileName));
  if (!current) {
    throw new GalleyError("LOCK_INVALID", `no cookbooks.lock beside ${sources.file}`, {
      hint: "run galley cookbooks install",
    });
  }
  const git = session(values);
  const results: Outdated[] = [];
  for (const name of Object.keys(current.cookbooks)) {
    const result = await checkOutdated(sources, current, git, name);
    if (result.newer.length || result.moved || result.changed) results.push(result);
  }
  if (values.json) {
    writeJson({ cookbooks: results });
    return exitCodes.ok;
  }
  if (results.length === 0) process.stdout.write("every locked cookbook is up to date with its source\n");
  for (const r of results) process.stdout.write(`${formatOutdated(r)}\n`);
  return exitCodes.ok;
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

function formatOutdated(r: Outdated): string {
  const parts: string[] = [];
  if (r.changed) parts.push("its folder changed since it was locked: galley cookbooks install re-locks it");
  if (r.moved) parts.push(`${r.moved.label} moved: ${r.moved.from.slice(0, 7)} → ${r.moved.to.slice(0, 7)}`);
  if (r.newer.length) {
    const notes = [
      ...(r.tag !== undefined ? [`cookbooks.yaml pins tag ${r.tag}`] : []),
      ...(r.allowed !== undefined ? [`update can take ${r.allowed}`] : []),
      ...(r.heldBy?.length ? [`${r.newer.at(-1)} held back: ${r.heldBy.join(", ")}`] : []),
    ];
    parts.push(`newer: ${r.newer.join(", ")}${notes.length ? ` (${notes.join("; ")})` : ""}`);
  }
  const update = r.moved || r.allowed ? `; galley cookbooks update ${r.name}` : "";
  return `${r.name.padEnd(16)} ${r.version.padEnd(10)} ${parts.join("; ")}${update}`;
}

async function vendor(values: Values, root: string, rest: string[]): Promise<number> {
  if (rest.length !== 1) {
    throw new GalleyError("USAGE", "galley cookbooks vendor takes one folder", {
      hint: "galley cookbooks vendor DIR: copies the locked cookbooks into DIR/<name>/ with DIR/cookbooks.lock",
    });
  }
  const target = path.resolve(rest[0]!);
  const { sources, lock: current, cookbooks } = await lockedKitchen(root);
  await checkVendorTarget(target, sources);
  await fs.mkdir(path.dirname(target), { recursive: true });
  const temp = await fs.mkdtemp(path.join(path.dirname(target), `.${path.basename(target)}.vendor-`));
  try {
    for (const [name, cookbook] of cookbooks) {
      const copy = path.join(temp, name);
      await fs.cp(cookbook.dir, copy, {
        recursive: true,
        verbatimSymlinks: true,
        // the digest ignores them, so a vendored copy leaves them out
        filter: (source) => !ignoredNames.has(path.basename(source)),
      });
      const entry = current.cookbooks[name]!;
      // the kitchen's copy was just checked to be the locked commit's export: the vendored one records it too
      if (isGitSource(entry.source) && entry.commit !== undefined) {
        const subdir = normalizeSubdir(entry.source.subdir ?? "");
        await recordOrigin(copy, entry.sha256, { commit: entry.commit, subdir });
      }
      await verifyLocked(name, entry, copy, "vendor");
    }
    await fs.writeFile(path.join(temp, lockFileName), formatLock(current));
    await replaceFolder(temp, target);
  } finally {
    await fs.rm(temp, { recursive: true, force: true });
  }
  const rows = [...cookbooks.values()].map((c) => ({ name: c.name, version: c.version }));
  if (values.json) writeJson({ status: "ok", dir: target, cookbooks: rows });
  else process.stdout.write(`vendored ${rows.length} cookbooks into ${target}\n`);
  return exitCodes.ok;
}

// only an empty folder or an earlier vendor folder may be replaced, and never one holding a path source
async function checkVendorTarget(target: string, sources: Sources): Promise<void> {
  for (const [name, source] of sources.cookbooks) {
    if (isGitSource(source)) continue;
    const dir = pathSourceDir(sources.root, source);
    const inside = (child: string, parent: string) =>
      child === parent || child.startsWith(`${parent}${path.sep}`);
    if (inside(dir, target) || inside(target, dir)) {
      throw new GalleyError(
        "USAGE",
        `galley cookbooks vendor: ${target} holds or is inside cookbook ${name} (its path: source)`,
        {
          hint: "vendor into another folder: vendoring replaces the folder's content",
        },
      );
    }
  }
  const stat = await fs.stat(target).catch(() => undefined);
  if (!stat) return;
  const entries = stat.isDirectory() ? await fs.readdir(target) : undefined;
  if (entries && (entries.length === 0 || entries.includes(lockFileName))) return;
  throw new GalleyError(
    "USAGE",
    `galley cookbooks vendor: ${target} is not empty and is not a vendor folder`,
    {
      hint: "give an empty or new folder (a folder holding cookbooks.lock from an earlier vendor is replaced)",
    },
  );
}

// rename cannot replace a non-empty folder: move the old one aside, put the new one in, drop the old
async function replaceFolder(from: string, to: string): Promise<void> {
  const aside = `${from}.old`;
  const moved = await fs.rename(to, aside).then(
    () => true,
    () => false,
  );
  try {
    await fs.rename(from, to);
  } catch (error) {
    if (moved) await fs.rename(aside, to);
    throw error;
  }
  if (moved) await fs.rm(aside, { recursive: true, force: true });
}
