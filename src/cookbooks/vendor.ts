import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { replaceDir, writeFileAtomic } from "../hosts/atomic-write.ts";
import { ignoredNames } from "./digest.ts";
import { lockedKitchen } from "./kitchen.ts";
import { formatLock, lockFileName, verifyLocked } from "./lock.ts";
import { recordOrigin } from "./origin.ts";
import { isGitSource, normalizeSubdir, pathSourceDir, type Sources } from "./sources.ts";

// `galley cookbooks vendor` as a function: the locked cookbooks copied into a folder of their own.

/** What a vendor wrote: the folder and the cookbooks in it. */
export interface VendorResult {
  dir: string;
  cookbooks: { name: string; version: string }[];
}

/**
 * Copies the locked cookbooks of the kitchen at `root` into `dir/<name>/` with `dir/cookbooks.lock`,
 * each checked against its lock entry. `dir` must be new, empty, or an earlier vendor folder (it is
 * replaced whole, in one rename); never a folder holding or inside a path source.
 *
 * @example const { cookbooks } = await vendorCookbooks(kitchen, "vendor/cookbooks")
 */
export async function vendorCookbooks(root: string, dir: string): Promise<VendorResult> {
  const target = path.resolve(dir);
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
    await writeFileAtomic(path.join(temp, lockFileName), formatLock(current));
    await replaceDir(temp, target);
  } finally {
    await fs.rm(temp, { recursive: true, force: true });
  }
  return {
    dir: target,
    cookbooks: [...cookbooks.values()].map((c) => ({ name: c.name, version: c.version })),
  };
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
