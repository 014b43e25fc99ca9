import * as fs from "node:fs/promises";
import * as path from "node:path";
import { tempPath } from "../core/temp-files.ts";

// Every atomic write of a file on this machine outside the Host interface (the cookbooks lock, a
// fleet's state, a cloned stack file, an edited secrets file…): a temp file beside it (named as
// temp-files.ts names them, so a sweep recognises a killed run's leftover), fsync, rename, fsync of
// the folder. A reader, or a run killed at any point, sees the old file or the new one, never half.

/** How to write: the new file's mode (the temp file has it from its creation); default 0666 less the umask. */
export interface AtomicWriteOptions {
  mode?: number | undefined;
  /** refuse to replace an existing file: fails with EEXIST (the new file is linked, not renamed, into place) */
  exclusive?: boolean | undefined;
}

/**
 * Replaces (or creates) `file` with `data` atomically and durably.
 *
 * @example await writeFileAtomic("cookbooks.lock.yaml", text, { mode: 0o644 })
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  options: AtomicWriteOptions = {},
): Promise<void> {
  const temp = tempPath(file);
  try {
    const handle = await fs.open(temp, "wx", options.mode ?? 0o666);
    try {
      await handle.writeFile(data);
      // the umask may have taken bits the caller asked for
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (options.exclusive) await fs.link(temp, file);
    else await fs.rename(temp, file);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  if (options.exclusive) await fs.rm(temp, { force: true });
  await syncDir(path.dirname(file));
}

/**
 * Puts the folder `from` in the place of `to` (a rename cannot replace a non-empty folder: the old
 * one moves aside first and is removed after; if the new one cannot go in, the old one comes back).
 *
 * @example await replaceDir(".vendor-tmp", "vendor/cookbooks")
 */
export async function replaceDir(from: string, to: string): Promise<void> {
  const aside = tempPath(to);
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
  await syncDir(path.dirname(to));
}

// the rename lives in the folder: without this a power loss may bring the old entry back
async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
