import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { Facts } from "../core/host.ts";
import { LocalHost } from "../hosts/local.ts";
import { pkg } from "./package.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

// Real packages, real dpkg: two tiny .deb versions in a temporary apt repository that apt sees only
// through `options`, so the machine's own sources and lists are never read or written.
const name = "galley-t-hello";
const host = new LocalHost();
const skip = process.getuid?.() !== 0 ? "needs root: installs real packages with apt" : false;
let dir = "";
let options: string[] = [];

/** apt options pointing at a private sources list, lists and cache under `root`. */
async function aptOptions(root: string, repo: string): Promise<string[]> {
  await fs.mkdir(path.join(root, "lists", "partial"), { recursive: true });
  await fs.mkdir(path.join(root, "cache", "archives", "partial"), { recursive: true });
  await fs.mkdir(path.join(root, "sources.list.d"));
  await fs.writeFile(path.join(root, "sources.list"), `deb [trusted=yes] file:${repo} ./\n`);
  return [
    ...[
      "-o",
      `Dir::Etc::SourceList=${root}/sources.list`,
      "-o",
      `Dir::Etc::SourceParts=${root}/sources.list.d`,
    ],
    ...["-o", `Dir::State::Lists=${root}/lists`, "-o", `Dir::Cache=${root}/cache`],
    // wait for dpkg's lock rather than fail when another test file installs at the same time
    ...["-o", "DPkg::Lock::Timeout=300", "--no-install-recommends"],
  ];
}

async function buildDeb(repo: string, version: string): Promise<void> {
  const root = path.join(dir, `build-${version}`);
  await fs.mkdir(path.join(root, "DEBIAN"), { recursive: true });
  await fs.mkdir(path.join(root, "usr/share", name), { recursive: true });
  await fs.mkdir(path.join(root, "etc"));
  const control = `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Galley tests <tests@galley.invalid>\nDescription: Galley test package\n`;
  await fs.writeFile(path.join(root, "DEBIAN/control"), control);
  await fs.writeFile(path.join(root, "DEBIAN/conffiles"), `/etc/${name}.conf\n`);
  await fs.writeFile(path.join(root, `etc/${name}.conf`), "greeting=hello\n");
  await fs.writeFile(path.join(root, "usr/share", name, "hello.txt"), `hello ${version}\n`);
  execFileSync(
    "dpkg-deb",
    ["--root-owner-group", "--build", root, path.join(repo, `${name}_${version}_all.deb`)],
    {
      stdio: "ignore",
    },
  );
}

function dpkgStatus(): string {
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

function purge(): void {
  execFileSync("dpkg", ["--purge", name], { stdio: "ignore" });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

before(async () => {
  if (skip) return;
  dir = await tempDir("galley-t-package-");
  const repo = path.join(dir, "repo");
  await fs.mkdir(repo);
  await buildDeb(repo, "1.0");
  await buildDeb(repo, "2.0");
  execFileSync("sh", ["-c", "dpkg-scanpackages -m . /dev/null > Packages 2>/dev/null"], { cwd: repo });
  options = await aptOptions(path.join(dir, "apt"), repo);
  execFileSync("apt-get", [...options, "update", "-q"], { stdio: "ignore" });
  purge();
});

after(async () => {
  if (skip) return;
  purge();
  await fs.rm(dir, { recursive: true, force: true });
});

test("package: install installs the candidate, then changes nothing", { skip }, async () => {
  purge();
  const changes = await convergeTwice(host, pkg, { name, options });
  assert.deepEqual(changes, [{ property: "version", from: "absent", to: "2.0" }]);
  assert.equal(dpkgStatus(), "install ok installed 2.0");
  assert.equal(await fs.readFile(`/usr/share/${name}/hello.txt`, "utf8"), "hello 2.0\n");
});

test("package: a version pin installs exactly that version, then moves to a new pin both ways", {
  skip,
}, async () => {
  purge();
  assert.deepEqual(await convergeTwice(host, pkg, { name, options, version: "1.0" }), [
    { property: "version", from: "absent", to: "1.0" },
  ]);
  assert.equal(dpkgStatus(), "install ok installed 1.0");
  assert.deepEqual(await convergeTwice(host, pkg, { name, options, version: "2.0" }), [
    { property: "version", from: "1.0", to: "2.0" },
  ]);
  assert.deepEqual(await convergeTwice(host, pkg, { name, options, version: "1.0" }), [
    { property: "version", from: "2.0", to: "1.0" },
  ]);
  assert.equal(await fs.readFile(`/usr/share/${name}/hello.txt`, "utf8"), "hello 1.0\n");
});

test("package: install keeps an older installed version; upgrade moves it to the candidate", {
  skip,
}, async () => {
  purge();
  await convergeTwice(host, pkg, { name, options, version: "1.0" });
  assert.deepEqual(await convergeTwice(host, pkg, { name, options }), []);
  assert.equal(dpkgStatus(), "install ok installed 1.0");
  assert.deepEqual(await convergeTwice(host, pkg, { name, options }, { action: "upgrade" }), [
    { property: "version", from: "1.0", to: "2.0" },
  ]);
  assert.equal(dpkgStatus(), "install ok installed 2.0");
});

test("package: upgrade installs a missing package", { skip }, async () => {
  purge();
  const changes = await convergeTwice(host, pkg, { name, options }, { action: "upgrade" });
  assert.deepEqual(changes, [{ property: "version", from: "absent", to: "2.0" }]);
});

test("package: remove keeps the conffiles, purge removes them, both twice-converged", { skip }, async () => {
  await convergeTwice(host, pkg, { name, options });
  const removed = await convergeTwice(host, pkg, { name, options }, { action: "remove" });
  assert.deepEqual(removed, [{ property: "status", from: "installed", to: "removed" }]);
  assert.match(dpkgStatus(), /config-files/);
  assert.equal(await exists(`/usr/share/${name}/hello.txt`), false);
  assert.equal(await exists(`/etc/${name}.conf`), true);
  const purged = await convergeTwice(host, pkg, { name, options }, { action: "purge" });
  assert.deepEqual(purged, [{ property: "status", from: "config-files", to: "purged" }]);
  assert.equal(await exists(`/etc/${name}.conf`), false);
  assert.deepEqual(await convergeTwice(host, pkg, { name, options }, { action: "remove" }), []);
});

test("package: purge removes an installed package in one step", { skip }, async () => {
  await convergeTwice(host, pkg, { name, options });
  const changes = await convergeTwice(host, pkg, { name, options }, { action: "purge" });
  assert.deepEqual(changes, [{ property: "status", from: "installed", to: "purged" }]);
  assert.equal(dpkgStatus(), "unknown");
});

test("package: drift (removed behind Galley's back) is reinstalled", { skip }, async () => {
  await convergeTwice(host, pkg, { name, options });
  execFileSync("dpkg", ["--remove", name], { stdio: "ignore" });
  const changes = await convergeTwice(host, pkg, { name, options });
  assert.deepEqual(changes, [{ property: "version", from: "absent", to: "2.0" }]);
  assert.equal(await exists(`/usr/share/${name}/hello.txt`), true);
});

test("package: a package no apt source has is a clear error", { skip }, async () => {
  const props = await prepare(pkg, { name: "galley-t-missing", options });
  const current = await pkg.read(host, props);
  assert.deepEqual(pkg.diff(current, props, "install"), [
    { property: "version", from: "absent", to: "(no candidate)" },
  ]);
  await assert.rejects(pkg.apply(host, props, "install", current, { stateDir: dir }), (error: Error) => {
    assert.match(error.message, /no package galley-t-missing in the configured apt sources/);
    assert.match((error as { hint?: string }).hint ?? "", /apt-get update or set updateCache/);
    return true;
  });
});

test("package: a pinned version no apt source has is a clear error listing the known ones", {
  skip,
}, async () => {
  const props = await prepare(pkg, { name, options, version: "3.0" });
  await assert.rejects(
    pkg.apply(host, props, "install", await pkg.read(host, props), { stateDir: dir }),
    /no version 3.0 of package galley-t-hello in the configured apt sources \(known versions: 2.0, 1.0\)/,
  );
});

test("package: updateCache runs apt-get update when there is no candidate yet", { skip }, async () => {
  purge();
  // fresh, never-updated lists: apt knows nothing until `apt-get update`
  const stale = await aptOptions(path.join(dir, "apt-stale"), path.join(dir, "repo"));
  const props = await prepare(pkg, { name, options: stale });
  await assert.rejects(
    pkg.apply(host, props, "install", await pkg.read(host, props), { stateDir: dir }),
    /no package/,
  );
  const changes = await convergeTwice(host, pkg, { name, options: stale, updateCache: true });
  assert.deepEqual(changes, [{ property: "version", from: "absent", to: "(no candidate)" }]);
  assert.equal(dpkgStatus(), "install ok installed 2.0");
});

test("package: a non-Debian platform is PLATFORM_UNSUPPORTED naming the platform and the package", async () => {
  // a test double for the platform only: everything else is the real local host
  class RhelHost extends LocalHost {
    override async facts(): Promise<Facts> {
      const facts = await super.facts();
      return { ...facts, os: { ...facts.os, id: "rocky", family: "rhel", prettyName: "Rocky Linux 9.4" } };
    }
  }
  const props = await prepare(pkg, { name: "nginx" });
  for (const attempt of [
    pkg.read(new RhelHost(), props),
    pkg.apply(new RhelHost(), props, "install", undefined, { stateDir: "/nonexistent" }),
  ]) {
    await assert.rejects(attempt, (error: Error & { code?: string; hint?: string }) => {
      assert.equal(error.code, "PLATFORM_UNSUPPORTED");
      assert.match(error.message, /package\[nginx\].*Rocky Linux 9\.4.*family rhel/);
      assert.match(error.hint ?? "", /apt on Debian and Ubuntu/);
      return true;
    });
  }
});

test("package: the schema refuses option-like names, bad versions and unknown properties", () => {
  for (const input of [
    { name: "-y" },
    { name: "nginx", version: "latest" },
    { name: "nginx", versoin: "1.0" },
  ]) {
    assert.equal(pkg.schema.safeParse(input).success, false, JSON.stringify(input));
  }
  assert.deepEqual(pkg.schema.parse({ name: "libc6:amd64" }), {
    name: "libc6:amd64",
    options: [],
    updateCache: false,
  });
});
