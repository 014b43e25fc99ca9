import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { Header } from "tar/header";
import { Parser } from "tar/parse";

/** One entry of a bundle's tar, as a re-packer sees it. */
export interface TarEntry {
  path: string;
  type: string;
  mode: number;
  data: Buffer;
  linkpath?: string;
}

/** Every entry of a gzipped tar, with its content. */
export async function readTar(file: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const parser = new Parser({
    onReadEntry: (entry) => {
      const chunks: Buffer[] = [];
      entry.on("data", (chunk: Buffer) => chunks.push(chunk));
      entry.on("end", () =>
        entries.push({
          path: entry.path,
          type: entry.type,
          mode: entry.mode ?? 0o644,
          data: Buffer.concat(chunks),
          ...(entry.linkpath ? { linkpath: entry.linkpath } : {}),
        }),
      );
    },
  });
  const tar = gunzipSync(await fs.readFile(file));
  await new Promise((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
    parser.end(tar);
  });
  return entries;
}

/**
 * Packs entries into a gzipped tar in `dir`, named by its own sha256 (`<id>.tgz`), the way anyone could
 * re-pack a bundle; returns the file.
 */
export async function repack(dir: string, entries: readonly TarEntry[]): Promise<string> {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const header = Buffer.alloc(512);
    const data = entry.type === "File" ? entry.data : Buffer.alloc(0);
    new Header({
      path: entry.path,
      // written as given, whatever it is: a re-packer is not bound to what galley writes
      type: entry.type as "File",
      mode: entry.mode,
      size: data.length,
      linkpath: entry.linkpath ?? "",
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    }).encode(header);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  const archive = gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
  const file = path.join(dir, `${createHash("sha256").update(archive).digest("hex")}.tgz`);
  await fs.writeFile(file, archive);
  return file;
}

/** The entries with bundle.json's JSON changed by `edit`. */
export function editManifest(
  entries: readonly TarEntry[],
  edit: (manifest: Record<string, unknown>) => void,
) {
  return editJson(entries, "bundle.json", edit);
}

/** The entries with one JSON member changed by `edit`. */
export function editJson<T = Record<string, unknown>>(
  entries: readonly TarEntry[],
  name: string,
  edit: (json: T) => void,
): TarEntry[] {
  return entries.map((entry) => {
    if (entry.path !== name) return entry;
    const json = JSON.parse(entry.data.toString()) as T;
    edit(json);
    return { ...entry, data: Buffer.from(JSON.stringify(json, null, 2)) };
  });
}
