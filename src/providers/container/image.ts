import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { cacheDir } from "../../cookbooks/git.ts";
import { GalleyError } from "../../core/errors.ts";
import { customizeScript } from "./customize.ts";
import { withLock } from "./lock.ts";
import { removeTree } from "./mounts.ts";
import { bootstrapTool, buildTools, requireTools } from "./preflight.ts";
import { lastLines, run } from "./run.ts";
import { aptNetworkOptions, formatOneLine, releaseSources } from "./sources.ts";

/** The images Galley can build: a Debian release and the packages every host has. */
export const images = {
  "debian-bookworm": {
    codename: "bookworm",
    packages: [
      "openssh-server",
      "sudo",
      "systemd",
      "systemd-sysv",
      "dbus",
      "libpam-systemd",
      "iproute2",
      "procps",
      "ca-certificates",
      "python3",
      "tar",
      "gzip",
      "cron",
      "less",
    ],
  },
} as const;

export type ImageName = keyof typeof images;

/** A built image: a read-only root file system shared by every host made from it. */
export interface Image {
  name: ImageName;
  codename: string;
  /** content key: the package list and the build script */
  key: string;
  rootfs: string;
}

// bump when the way images are built changes: every cached image is then rebuilt once
const scriptVersion = 1;

/** The image's name checked against the known images. */
export function imageName(name: string): ImageName {
  if (Object.hasOwn(images, name)) return name as ImageName;
  throw new GalleyError("ARGS_INVALID", `unknown image "${name}"`, {
    hint: `images: ${Object.keys(images).join(", ")}`,
  });
}

/** Where an image lives in the cache (built or not). */
export function imageFor(name: ImageName, cache = cacheDir()): Image {
  const spec = images[name];
  const key = createHash("sha256")
    .update(JSON.stringify({ spec, scriptVersion, customizeScript }))
    .digest("hex")
    .slice(0, 12);
  return {
    name,
    codename: spec.codename,
    key,
    rootfs: path.join(cache, "images", `${name}-${key}`, "rootfs"),
  };
}

/**
 * The image, built the first time with mmdebstrap (else debootstrap) into a temporary folder
 * and renamed into place, under a lock: concurrent builders wait and then share it.
 */
export async function ensureImage(
  name: ImageName,
  log: (line: string) => void,
  cache = cacheDir(),
): Promise<Image> {
  const image = imageFor(name, cache);
  if (isBuilt(image)) return image;
  const dir = path.dirname(image.rootfs);
  await withLock(
    `${dir}.lock`,
    `the image ${name}`,
    async () => {
      if (isBuilt(image)) return;
      requireTools(buildTools);
      const tool = bootstrapTool();
      log(`building image ${name} with ${tool} (once per machine; about 30-60 s)`);
      const started = performance.now();
      const temp = await freshBuildDir(dir);
      try {
        await bootstrap(tool, image, path.join(temp, "rootfs"), temp, log);
        const info = {
          name,
          key: image.key,
          packages: images[name].packages,
          tool,
          builtAt: new Date().toISOString(),
        };
        await fs.writeFile(path.join(temp, "image.json"), `${JSON.stringify(info, null, 2)}\n`);
        await fs.rm(path.join(temp, "customize.sh"));
        await fs.rename(temp, dir);
      } catch (error) {
        await removeTree(temp);
        throw error;
      }
      log(`image ${name} built in ${((performance.now() - started) / 1000).toFixed(1)}s: ${image.rootfs}`);
    },
    () => log(`waiting for another galley building image ${name}`),
  );
  return image;
}

function isBuilt(image: Image): boolean {
  return existsSync(path.join(image.rootfs, "etc", "os-release"));
}

async function bootstrap(
  tool: "mmdebstrap" | "debootstrap",
  image: Image,
  rootfs: string,
  temp: string,
  log: (line: string) => void,
): Promise<void> {
  const script = path.join(temp, "customize.sh");
  await fs.writeFile(script, customizeScript);
  const sources = await releaseSources(image.codename);
  const packages = images[image.name].packages.join(",");
  const onLine = (line: string) => log(`  ${image.name}: ${line}`);
  let argv: string[];
  if (tool === "mmdebstrap") {
    const aptopts = (await aptNetworkOptions()).map((option) => `--aptopt=${option}`);
    argv = [
      "mmdebstrap",
      "--mode=root",
      "--variant=minbase",
      `--include=${packages}`,
      ...aptopts,
      `--customize-hook=sh ${script} "$1"`,
      image.codename,
      rootfs,
      ...formatOneLine(sources),
    ];
  } else {
    const main = sources[0]!;
    argv = [
      "debootstrap",
      "--variant=minbase",
      `--include=${packages}`,
      ...(main.signedBy ? [`--keyring=${main.signedBy}`] : []),
      image.codename,
      rootfs,
      main.uri,
    ];
  }
  // a galley killed mid-build takes the bootstrap with it (mmdebstrap cleans up on SIGTERM)
  const result = await run(["setpriv", "--pdeathsig", "TERM", "--", ...argv], { onLine });
  if (result.code !== 0) {
    throw new GalleyError("PROVIDER_FAILED", `building image ${image.name} failed: ${lastLines(result)}`, {
      hint: "the machine's apt sources must reach a Debian mirror (check: apt-get update); then run again",
    });
  }
  if (tool === "debootstrap") {
    const custom = await run(["sh", script, rootfs]);
    if (custom.code !== 0) {
      throw new GalleyError(
        "PROVIDER_FAILED",
        `customizing image ${image.name} failed: ${lastLines(custom)}`,
        {
          hint: "run again; report a bug if it persists",
        },
      );
    }
  }
}

/**
 * A new temporary folder to build `dir` in, beside it. Under the build's lock, so folders of
 * the same build left by an interrupted galley are removed first (never through a mount).
 */
export async function freshBuildDir(dir: string): Promise<string> {
  const parent = path.dirname(dir);
  const prefix = `.build-${path.basename(dir)}-`;
  await fs.mkdir(parent, { recursive: true });
  for (const entry of await fs.readdir(parent)) {
    if (entry.startsWith(prefix)) await removeTree(path.join(parent, entry));
  }
  const temp = await fs.mkdtemp(path.join(parent, prefix));
  // hosts' services read the image through the overlay: the cache folders must not hide it
  await fs.chmod(temp, 0o755);
  return temp;
}
