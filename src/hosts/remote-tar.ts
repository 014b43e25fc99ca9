/** What a tar archive says of one path read: its bytes when it is a file, else what it is. */
export interface TarEntry {
  kind: string;
  content?: Uint8Array;
}

/**
 * One `tar` for many files, as a single stream that carries any content (NULs, newlines, empty
 * files, big files). Symlinks are followed like a local read follows them, and a file reached by
 * two names is stored twice rather than as a hard link.
 */
export function readArgv(paths: readonly string[]): string[] {
  return [
    ...["env", "LC_ALL=C", "tar", "-cPf", "-", "--format=gnu", "--no-recursion"],
    ...["--dereference", "--hard-dereference", "--numeric-owner", "--", ...paths],
  ];
}

/**
 * Parses the archive with node-tar and matches its entries to the paths asked, in order: tar
 * writes one entry per readable path, in argument order (a directory's name gains a slash).
 */
export async function parseTarEntries(
  archive: Buffer,
  paths: readonly string[],
): Promise<Map<string, TarEntry>> {
  const { Parser } = await import("tar");
  const entries: { path: string; entry: TarEntry }[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      onReadEntry(read) {
        const chunks: Buffer[] = [];
        const entry: TarEntry = { kind: describe(read.type) };
        entries.push({ path: read.path, entry });
        read.on("data", (chunk: Buffer) => chunks.push(chunk));
        read.on("end", () => {
          if (entry.kind === "file") entry.content = Buffer.concat(chunks);
        });
      },
    });
    parser.on("error", reject);
    parser.on("end", () => resolve());
    parser.end(archive);
  });
  const found = new Map<string, TarEntry>();
  let cursor = 0;
  for (const { path, entry } of entries) {
    const name = trimSlashes(path);
    while (cursor < paths.length && trimSlashes(paths[cursor]!) !== name) cursor++;
    if (cursor === paths.length) break;
    found.set(paths[cursor]!, entry);
    cursor++;
  }
  return found;
}

function describe(type: string): string {
  if (type === "File" || type === "OldFile" || type === "ContiguousFile") return "file";
  if (type === "Directory") return "directory";
  return type.replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
}

function trimSlashes(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, "") || "/" : path;
}
