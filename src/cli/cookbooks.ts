import * as path from "node:path";
import { cacheDir, type GitSession, gitSession } from "../cookbooks/git.ts";
import { requireSources } from "../cookbooks/kitchen.ts";
import { type LockedCookbook, lockFileName, readLock, writeLock } from "../cookbooks/lock.ts";
import { type Outdated, outdatedCookbooks } from "../cookbooks/outdated.ts";
import { resolveKitchen } from "../cookbooks/resolve.ts";
import { vendorCookbooks } from "../cookbooks/vendor.ts";
import { describeSource } from "../cookbooks/sources.ts";
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

async function outdated(values: Values, root: string): Promise<number> {
  const results = await outdatedCookbooks(root, { log: session(values).log });
  if (values.json) {
    writeJson({ cookbooks: results });
    return exitCodes.ok;
  }
  if (results.length === 0) process.stdout.write("every locked cookbook is up to date with its source\n");
  for (const r of results) process.stdout.write(`${formatOutdated(r)}\n`);
  return exitCodes.ok;
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
  const { dir, cookbooks } = await vendorCookbooks(root, rest[0]!);
  if (values.json) writeJson({ status: "ok", dir, cookbooks });
  else process.stdout.write(`vendored ${cookbooks.length} cookbooks into ${dir}\n`);
  return exitCodes.ok;
}
