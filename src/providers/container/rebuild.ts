import { readFileSync } from "node:fs";
import * as path from "node:path";
import { GalleyError } from "../../core/errors.ts";
import { type AptRepo, aptRepoFor, ensureAptRepo } from "./apt-repo.ts";
import { ensureImage, type Image, type ImageName, imageFor } from "./image.ts";
import { removeTree } from "./mounts.ts";
import { preflight } from "./preflight.ts";

/**
 * Builds the image and its apt repository if they are not cached (`galley hosts image`); with
 * `rebuild`, deletes the cached ones first, unless a host on this machine still uses them.
 */
export async function buildImage(
  name: ImageName,
  rebuild: boolean,
  log: (line: string) => void,
): Promise<{ image: Image; repo: AptRepo }> {
  preflight();
  if (rebuild) {
    const image = imageFor(name);
    const repoDir = path.dirname(aptRepoFor(image).repo);
    const imageDir = path.dirname(image.rootfs);
    const users = overlaysUsing([imageDir, repoDir]);
    if (users.length > 0) {
      throw new GalleyError(
        "PROVIDER_FAILED",
        `the image ${name} is in use by hosts mounted at ${users.join(", ")}`,
        {
          hint: "galley hosts down (or destroy) in those fleets first, then rebuild",
        },
      );
    }
    log(`deleting the cached image ${imageDir} and apt repository ${repoDir}`);
    await removeTree(repoDir);
    await removeTree(imageDir);
  }
  const image = await ensureImage(name, log);
  return { image, repo: await ensureAptRepo(image, log) };
}

// overlay mounts whose layers lie in one of `dirs`
function overlaysUsing(dirs: string[]): string[] {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .map((line) => line.split(" "))
    .filter((fields) => fields[2] === "overlay" && dirs.some((dir) => fields[3]?.includes(`${dir}/`)))
    .map((fields) => fields[1]!);
}
