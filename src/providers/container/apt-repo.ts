import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { cacheDir } from "../../cookbooks/git.ts";
import { GalleyError } from "../../core/errors.ts";
import { aptMountPoint } from "./customize.ts";
import { buildHelloDeb, helloPackage } from "./hello-deb.ts";
import { freshBuildDir, type Image } from "./image.ts";
import { withLock } from "./lock.ts";
import { removeTree } from "./mounts.ts";
import { buildTools, requireTools } from "./preflight.ts";
import { indexRepo } from "./repo-index.ts";
import { lastLines, run, runOk } from "./run.ts";
import { formatOneLine, releaseSources } from "./sources.ts";

/**
 * The Debian packages the hosts' local apt repository offers, with their dependency closure
 * (what the image lacks). Tests and demos install only these: hosts have no route out.
 */
export const repoPackages = ["nginx", "haproxy", "curl", "git", "nodejs", "postgresql"] as const;

/** A built local apt repository for one image. */
export interface AptRepo {
  /** the flat repository (`*.deb` + `Packages`), bind-mounted read-only at /srv/galley-apt */
  repo: string;
  /** an overlay layer over the image holding apt's lists of the repository: no `apt-get update` needed */
  layer: string;
}

const scriptVersion = 2;

/** Where the repository of an image lives in the cache (built or not). */
export function aptRepoFor(image: Image, cache = cacheDir()): AptRepo {
  const key = createHash("sha256")
    .update(JSON.stringify({ image: image.key, repoPackages, helloPackage, scriptVersion }))
    .digest("hex")
    .slice(0, 12);
  const dir = path.join(cache, "apt", `${image.name}-${key}`);
  return { repo: path.join(dir, "repo"), layer: path.join(dir, "layer") };
}

/**
 * The local apt repository, built the first time: `apt-get install --download-only` of
 * `repoPackages` against the image's dpkg status (so exactly what a host lacks is downloaded),
 * plus the `galley-hello` test package, indexed with dpkg-scanpackages (see indexRepo).
 */
export async function ensureAptRepo(
  image: Image,
  log: (line: string) => void,
  cache = cacheDir(),
): Promise<AptRepo> {
  const target = aptRepoFor(image, cache);
  if (isBuilt(target)) return target;
  const dir = path.dirname(target.repo);
  await withLock(
    `${dir}.lock`,
    "the local apt repository",
    async () => {
      if (isBuilt(target)) return;
      requireTools(buildTools);
      log(`building the local apt repository (${repoPackages.join(", ")}, galley-hello): once per machine`);
      const started = performance.now();
      const temp = await freshBuildDir(dir);
      try {
        const repo = path.join(temp, "repo");
        await download(image, temp, repo, log);
        await buildHelloDeb(path.join(temp, "hello"), repo);
        await indexRepo(repo);
        await listsLayer(image, temp, repo);
        await fs.rename(temp, dir);
      } catch (error) {
        await removeTree(temp);
        throw error;
      }
      log(
        `local apt repository built in ${((performance.now() - started) / 1000).toFixed(1)}s: ${target.repo}`,
      );
    },
    () => log("waiting for another galley building the local apt repository"),
  );
  return target;
}

function isBuilt(target: AptRepo): boolean {
  return existsSync(path.join(target.repo, "Packages")) && existsSync(target.layer);
}

// the machine's apt (its proxy settings apply) with private lists and cache, resolving against the image
async function download(
  image: Image,
  temp: string,
  repo: string,
  log: (line: string) => void,
): Promise<void> {
  const apt = path.join(temp, "apt");
  for (const sub of ["lists/partial", "cache/archives/partial", "parts", "state"]) {
    await fs.mkdir(path.join(apt, sub), { recursive: true });
  }
  const sources = formatOneLine(await releaseSources(image.codename));
  await fs.writeFile(path.join(apt, "sources.list"), `${sources.join("\n")}\n`);
  const options = [
    ...["-o", `Dir::Etc::SourceList=${apt}/sources.list`, "-o", `Dir::Etc::SourceParts=${apt}/parts`],
    ...["-o", `Dir::State::Lists=${apt}/lists`, "-o", `Dir::Cache=${apt}/cache`],
    ...["-o", `Dir::State::status=${image.rootfs}/var/lib/dpkg/status`],
    ...["-o", `Dir::State::extended_states=${apt}/state/extended_states`],
    // like a real server: a host's `apt-get install` brings Recommends, so they must be here too
    ...["-o", "APT::Install-Recommends=true", "-o", "Debug::NoLocking=true", "-q"],
  ];
  log("  apt: reading the Debian mirror's package lists");
  const update = await run(["apt-get", ...options, "update"]);
  if (update.code !== 0) {
    throw new GalleyError(
      "PROVIDER_FAILED",
      `apt-get update for the local repository failed: ${lastLines(update)}`,
      {
        hint: "the machine's apt sources must reach a Debian mirror (check: apt-get update)",
      },
    );
  }
  log(`  apt: downloading ${repoPackages.join(", ")} and their dependencies`);
  const install = await run(["apt-get", ...options, "install", "--download-only", "-y", ...repoPackages]);
  if (install.code !== 0) {
    throw new GalleyError(
      "PROVIDER_FAILED",
      `downloading packages for the local repository failed: ${lastLines(install)}`,
      {
        hint: "check the package names in repoPackages (src/providers/container/apt-repo.ts) and the mirror",
      },
    );
  }
  await fs.mkdir(repo);
  const archives = path.join(apt, "cache", "archives");
  const debs = (await fs.readdir(archives)).filter((name) => name.endsWith(".deb"));
  for (const deb of debs) await fs.rename(path.join(archives, deb), path.join(repo, deb));
  log(`  apt: ${debs.length} packages downloaded`);
  await fs.rm(apt, { recursive: true, force: true });
}

/**
 * Runs the image's own `apt-get update` against the repository in a private mount namespace and
 * keeps what it wrote (apt's lists) as an overlay layer: every host starts with its lists ready.
 */
async function listsLayer(image: Image, temp: string, repo: string): Promise<void> {
  const upper = path.join(temp, "layer");
  const work = path.join(temp, "layer-work");
  const merged = path.join(temp, "layer-merged");
  for (const dir of [upper, work, merged]) await fs.mkdir(dir);
  const script = [
    "set -e",
    `mount -t overlay overlay -o lowerdir="$1",upperdir="$2",workdir="$3" "$4"`,
    `mount --bind -o ro "$5" "$4${aptMountPoint}"`,
    `mount -t proc proc "$4/proc"`,
    `chroot "$4" apt-get update -q`,
  ].join("\n");
  await runOk(
    [
      "unshare",
      "--mount",
      "--propagation",
      "private",
      "sh",
      "-c",
      script,
      "sh",
      image.rootfs,
      upper,
      work,
      merged,
      repo,
    ],
    "reading the local repository's package lists",
  );
  await fs.rm(work, { recursive: true, force: true });
  await fs.rmdir(merged);
}
