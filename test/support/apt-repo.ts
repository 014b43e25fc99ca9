import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";

// Real packages, real dpkg: tiny .deb files in a private `file:` apt repository that apt sees only
// through the returned options, so the machine's own sources, lists and cache are never touched.

/** A private apt repository holding one test package. */
export interface AptRepo {
  /** apt-get options that point apt at this repository only */
  options: string[];
  /** the file shipped by the package: /usr/share/<name>/hello.txt */
  payload: string;
}

/** How the test package is built. */
export interface AptRepoOptions {
  /** also ship /etc/<name>.conf as a dpkg conffile (kept by remove, deleted by purge) */
  conffile?: boolean;
}

/**
 * Builds `name` at each version with dpkg-deb into `<dir>/repo`, indexes it, and runs
 * `apt-get update` on private lists under `<dir>/apt`.
 *
 * @example const { options } = await makeAptRepo(dir, "galley-t-x", ["1.0"]);
 */
export async function makeAptRepo(
  dir: string,
  name: string,
  versions: string[],
  build: AptRepoOptions = {},
): Promise<AptRepo> {
  const repo = path.join(dir, "repo");
  await fs.mkdir(repo, { recursive: true });
  for (const version of versions) await buildDeb(dir, repo, name, version, build);
  execFileSync("sh", ["-c", "dpkg-scanpackages -m . /dev/null > Packages 2>/dev/null"], { cwd: repo });
  const options = await aptOptions(path.join(dir, "apt"), repo);
  execFileSync("apt-get", [...options, "update", "-q"], { stdio: "ignore" });
  return { options, payload: `/usr/share/${name}/hello.txt` };
}

/** apt options pointing at a private sources list, lists and cache under `root` (lists not yet updated). */
export async function aptOptions(root: string, repo: string): Promise<string[]> {
  await fs.mkdir(path.join(root, "lists", "partial"), { recursive: true });
  await fs.mkdir(path.join(root, "cache", "archives", "partial"), { recursive: true });
  await fs.mkdir(path.join(root, "sources.list.d"), { recursive: true });
  await fs.writeFile(path.join(root, "sources.list"), `deb [trusted=yes] file:${repo} ./\n`);
  return [
    ...["-o", `Dir::Etc::SourceList=${root}/sources.list`],
    ...["-o", `Dir::Etc::SourceParts=${root}/sources.list.d`],
    ...["-o", `Dir::State::Lists=${root}/lists`, "-o", `Dir::Cache=${root}/cache`],
    // wait for dpkg's lock rather than fail when another test file installs at the same time
    ...["-o", "DPkg::Lock::Timeout=300", "--no-install-recommends"],
  ];
}

async function buildDeb(
  dir: string,
  repo: string,
  name: string,
  version: string,
  build: AptRepoOptions,
): Promise<void> {
  const root = path.join(dir, `build-${version}`);
  await fs.mkdir(path.join(root, "DEBIAN"), { recursive: true });
  await fs.mkdir(path.join(root, "usr/share", name), { recursive: true });
  const control = `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Galley tests <tests@galley.invalid>\nDescription: Galley test package\n`;
  await fs.writeFile(path.join(root, "DEBIAN/control"), control);
  await fs.writeFile(path.join(root, "usr/share", name, "hello.txt"), `hello ${version}\n`);
  if (build.conffile) {
    await fs.mkdir(path.join(root, "etc"));
    await fs.writeFile(path.join(root, "DEBIAN/conffiles"), `/etc/${name}.conf\n`);
    await fs.writeFile(path.join(root, `etc/${name}.conf`), "greeting=hello\n");
  }
  execFileSync(
    "dpkg-deb",
    ["--root-owner-group", "--build", root, path.join(repo, `${name}_${version}_all.deb`)],
    { stdio: "ignore" },
  );
}

/** Runs apt-get with the repository's options (remove, purge…); true when it exited 0. */
export function aptGet(options: string[], args: string[]): boolean {
  try {
    execFileSync("apt-get", [...options, ...args], {
      stdio: "ignore",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    return true;
  } catch {
    return false;
  }
}

/** dpkg's "Status Version" of a package, e.g. "install ok installed 1.0"; "unknown" when dpkg never saw it. */
export function dpkgStatus(name: string): string {
  try {
    const format = ["-f=$", "{Status} $", "{Version}"].join("");
    return execFileSync("dpkg-query", ["-W", format, name], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
  } catch {
    return "unknown";
  }
}
