import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";

/** One file of a cookbook as the digest sees it. */
export interface DigestEntry {
  /** POSIX path relative to the cookbook folder */
  path: string;
  kind: "file" | "executable" | "symlink";
  /** sha256 of the content, or of the link target */
  sha256: string;
}

/** Version-control and editor leftovers: not part of a cookbook's content (nor of a vendored copy). */
export const ignoredNames: ReadonlySet<string> = new Set([
  ".git",
  ".hg",
  ".svn",
  "node_modules",
  ".DS_Store",
]);

/**
 * The files of a cookbook folder, sorted by path: regular files (executable or not) and symlinks.
 * Directories count only through what they hold; ownership and times never count.
 */
export async function cookbookEntries(dir: string): Promise<DigestEntry[]> {
  const entries: DigestEntry[] = [];
  const walk = async (relative: string) => {
    const names = (await fs.readdir(path.join(dir, relative))).sort();
    for (const name of names) {
      if (ignoredNames.has(name)) continue;
      const rel = relative ? `${relative}/${name}` : name;
      const full = path.join(dir, rel);
      const stat = await fs.lstat(full);
      if (stat.isDirectory()) await walk(rel);
      else if (stat.isSymbolicLink())
        entries.push({ path: rel, kind: "symlink", sha256: sha256(await fs.readlink(full)) });
      else if (stat.isFile()) {
        const kind = stat.mode & 0o111 ? "executable" : "file";
        entries.push({ path: rel, kind, sha256: sha256(await fs.readFile(full)) });
      }
    }
  };
  await walk("");
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * The sha256 of a cookbook's content: every file's path, kind and content hash, in path order.
 * The same files give the same digest on any machine, wherever the folder is and whoever owns it.
 *
 * @example await cookbookDigest("cookbooks/web") // "3f5a…"
 */
export async function cookbookDigest(dir: string): Promise<string> {
  return digestOf(await cookbookEntries(dir));
}

/** The digest of a list of entries (what cookbookDigest hashes). */
export function digestOf(entries: readonly DigestEntry[]): string {
  const hash = createHash("sha256");
  for (const entry of entries) hash.update(`${entry.path}\0${entry.kind}\0${entry.sha256}\n`);
  return hash.digest("hex");
}

function sha256(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex");
}
