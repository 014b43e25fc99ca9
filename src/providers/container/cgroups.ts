import { type Dirent, existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../../core/errors.ts";
import { unescapeMount } from "./mounts.ts";

/**
 * Each host gets cgroups of its own, `galley/<machine>`, in the hierarchies systemd uses (the
 * unified cgroup2 one, and the legacy `name=systemd` one on a hybrid machine). Without them every
 * `systemd-nspawn --keep-unit` started from the same cgroup makes the same `payload` cgroup, and
 * the hosts' systemds share it: all of them create `system.slice/ssh.service`, `user.slice/
 * user-0.slice`… in one place, and when one host stops a unit (a session ends, the host is killed
 * or boots again) its systemd kills the processes of that unit on every host.
 */

/** A cgroup hierarchy systemd cares about: where it is mounted and the root visible to us. */
interface Hierarchy {
  kind: "unified" | "name=systemd";
  /** the folder of the hierarchy's root as this process sees it */
  root: string;
}

/** The hierarchies to place a host in: cgroup2, and name=systemd when mounted (hybrid / legacy). */
export function hierarchies(): Hierarchy[] {
  const found: Hierarchy[] = [];
  for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
    // fields: id parent major:minor root mountpoint options [optional…] - fstype source superoptions
    const [left, right] = line.split(" - ");
    if (!left || !right) continue;
    const fields = left.split(" ");
    const [fstype, , superOptions = ""] = right.split(" ");
    const mountRoot = fields[3];
    const point = fields[4];
    // a bind mount of a sub-cgroup (mount root not /) is not a place to create siblings in
    if (point === undefined || mountRoot !== "/") continue;
    if (fstype === "cgroup2" && !found.some((h) => h.kind === "unified"))
      found.push({ kind: "unified", root: unescapeMount(point) });
    if (
      fstype === "cgroup" &&
      superOptions.split(",").includes("name=systemd") &&
      !found.some((h) => h.kind === "name=systemd")
    )
      found.push({ kind: "name=systemd", root: unescapeMount(point) });
  }
  return found;
}

/** The folders of a host's cgroups: `<hierarchy>/galley/<machine>` in each hierarchy. */
export function hostCgroups(machine: string): string[] {
  return hierarchies().map((hierarchy) => path.join(hierarchy.root, "galley", machine));
}

/** Creates the host's cgroups (empty, no controllers: only a place of its own). */
export async function createHostCgroups(machine: string): Promise<string[]> {
  const dirs = hostCgroups(machine);
  for (const dir of dirs) {
    try {
      await fs.mkdir(dir, { recursive: true });
    } catch (error) {
      throw new GalleyError(
        "PROVIDER_FAILED",
        `cannot create the cgroup ${dir}: ${(error as Error).message}`,
        { hint: "galley hosts needs root and a writable cgroup file system (/sys/fs/cgroup)" },
      );
    }
  }
  return dirs;
}

/**
 * A command that moves itself into `dirs` and then runs `argv`: the launcher's children (and the
 * host's PID 1) start in the host's own cgroups.
 */
export function inCgroups(dirs: string[], argv: string[]): string[] {
  if (dirs.length === 0) return argv;
  const script =
    'while [ "$1" != -- ]; do echo $$ > "$1/cgroup.procs" || exit 125; shift; done; shift; exec "$@"';
  return ["/bin/sh", "-c", script, "galley-launch", ...dirs, "--", ...argv];
}

/**
 * Kills every process in the host's cgroups (cgroup.kill, Linux 5.14+) and reports whether it
 * could; the caller still sweeps its network namespace for anything that escaped.
 */
export function killCgroups(machine: string): boolean {
  let killed = false;
  for (const dir of hostCgroups(machine)) {
    const file = path.join(dir, "cgroup.kill");
    if (!existsSync(file)) continue;
    try {
      writeFileSync(file, "1");
      killed = true;
    } catch {}
  }
  return killed;
}

/** Pids of every process in the host's cgroups and below. */
export function cgroupPids(machine: string): number[] {
  const pids = new Set<number>();
  for (const dir of hostCgroups(machine)) for (const pid of pidsBelow(dir)) pids.add(pid);
  return [...pids];
}

/**
 * Removes the host's cgroups, deepest first (the host's systemd leaves its slices and scopes
 * behind). A cgroup that still holds a process stays; false then.
 */
export function removeHostCgroups(machine: string): boolean {
  let removed = true;
  for (const dir of hostCgroups(machine)) if (!removeBelow(dir)) removed = false;
  return removed;
}

/** Machines (gly<id>-<host>) that have cgroups under galley/, found by prefix: the sweep's list. */
export function cgroupMachines(prefix: string): string[] {
  const machines = new Set<string>();
  for (const hierarchy of hierarchies()) {
    const dir = path.join(hierarchy.root, "galley");
    let entries: string[] = [];
    try {
      entries = readdirSync(dir);
    } catch {}
    for (const entry of entries) if (entry.startsWith(prefix)) machines.add(entry);
  }
  return [...machines];
}

function pidsBelow(dir: string): number[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  const pids: number[] = [];
  try {
    for (const line of readFileSync(path.join(dir, "cgroup.procs"), "utf8").split("\n"))
      if (line) pids.push(Number(line));
  } catch {}
  for (const entry of entries) if (entry.isDirectory()) pids.push(...pidsBelow(path.join(dir, entry.name)));
  return pids;
}

function removeBelow(dir: string): boolean {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return true;
  }
  let removed = true;
  for (const entry of entries)
    if (entry.isDirectory() && !removeBelow(path.join(dir, entry.name))) removed = false;
  try {
    rmdirSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") removed = false;
  }
  return removed;
}
