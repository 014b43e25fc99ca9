import * as v from "valibot";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { Facts } from "../core/host.ts";
import { LocalHost } from "../hosts/local.ts";
import { pkg } from "./package.ts";
import { aptGet, aptOptions, dpkgStatus, makeAptRepo } from "../../test/support/apt-repo.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

// Real packages, real dpkg: two tiny .deb versions in a temporary apt repository that apt sees only
// through `options`, so the machine's own sources and lists are never read or written.
const name = "galley-t-hello";
const host = new LocalHost();
const skip = process.getuid?.() !== 0 ? "needs root: installs real packages with apt" : false;
let dir = "";
let options: string[] = [];

/** Purges the test package; through apt-get, which waits for dpkg's lock held by another test file. */
function purge(): void {
  assert.ok(aptGet(options, ["purge", "-y", "-q", name]), `apt-get purge ${name} failed`);
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
  ({ options } = await makeAptRepo(dir, name, ["1.0", "2.0"], { conffile: true }));
  purge();
});

after(async () => {
  if (skip) return;
  purge();
});

test("package: install installs the candidate, then changes nothing", { skip }, async () => {
  purge();
  const changes = await convergeTwice(host, pkg, { name, options });
  assert.deepEqual(changes, [{ property: "version", from: "absent", to: "2.0" }]);
  assert.equal(dpkgStatus(name), "install ok installed 2.0");
  assert.equal(await fs.readFile(`/usr/share/${name}/hello.txt`, "utf8"), "hello 2.0\n");
});

test("package: a version pin installs exactly that version, then moves to a new pin both ways", {
  skip,
}, async () => {
  purge();
  assert.deepEqual(await convergeTwice(host, pkg, { name, options, version: "1.0" }), [
    { property: "version", from: "absent", to: "1.0" },
  ]);
  assert.equal(dpkgStatus(name), "install ok installed 1.0");
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
  assert.equal(dpkgStatus(name), "install ok installed 1.0");
  assert.deepEqual(await convergeTwice(host, pkg, { name, options }, { action: "upgrade" }), [
    { property: "version", from: "1.0", to: "2.0" },
  ]);
  assert.equal(dpkgStatus(name), "install ok installed 2.0");
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
  assert.match(dpkgStatus(name), /config-files/);
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
  assert.equal(dpkgStatus(name), "unknown");
});

test("package: drift (removed behind Galley's back) is reinstalled", { skip }, async () => {
  await convergeTwice(host, pkg, { name, options });
  assert.ok(aptGet(options, ["remove", "-y", "-q", name]), `apt-get remove ${name} failed`);
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
  assert.equal(dpkgStatus(name), "install ok installed 2.0");
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
    assert.equal(v.safeParse(pkg.schema, input).success, false, JSON.stringify(input));
  }
  assert.deepEqual(v.parse(pkg.schema, { name: "libc6:amd64" }), {
    name: "libc6:amd64",
    options: [],
    updateCache: false,
  });
});
