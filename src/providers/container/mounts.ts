import { readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../../core/errors.ts";
import { run } from "./run.ts";

/** Mount points of this process's mount namespace at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const root = path.resolve(dir);
  const points = readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    .map(unescapeMount)
    .filter((point) => point === root || point.startsWith(`${root}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Whether `dir` is a mount point. */
export function isMounted(dir: string): boolean {
  return mountsUnder(dir).includes(path.resolve(dir));
}

/** Mounts an overlay: read-only `lower` layers (first is on top) under a writable `upper`. */
export async function mountOverlay(
  lower: string[],
  upper: string,
  work: string,
  merged: string,
): Promise<void> {
  if (isMounted(merged)) return;
  const options = `lowerdir=${lower.join(":")},upperdir=${upper},workdir=${work}`;
  const result = await run(["mount", "-t", "overlay", "overlay", "-o", options, merged]);
  if (result.code !== 0) {
    throw new GalleyError(
      "PROVIDER_FAILED",
      `cannot mount the overlay on ${merged}: ${result.stderr.trim()}`,
      {
        hint: "the kernel needs overlayfs, and the upper folder a file system with xattrs (not another overlay)",
      },
    );
  }
}

/** Unmounts everything at or below `dir`, retrying while processes still hold it; lazily at the end. */
export async function unmountAll(dir: string): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) await run(["umount", point]);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // still busy after 2 s: detach, so that the folder can go; the kernel frees it when unused
  for (const point of mountsUnder(dir)) await run(["umount", "--lazy", point]);
}

/**
 * Deletes a folder tree, but never through a mount point: a recursive delete would otherwise walk
 * into whatever is mounted below (an image's /dev, a host's root) and delete that.
 */
export async function removeTree(dir: string): Promise<void> {
  await unmountAll(dir);
  const left = mountsUnder(dir);
  if (left.length > 0) {
    throw new GalleyError("PROVIDER_FAILED", `cannot delete ${dir}: ${left[0]} is still mounted`, {
      hint: `unmount it (umount --lazy ${left[0]}) and run the command again`,
    });
  }
  await fs.rm(dir, { recursive: true, force: true });
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
export function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}
