import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { cgroupMachines, removeHostCgroups } from "./cgroups.ts";
import { type Fleet, type FleetPaths, hostPaths } from "./fleet.ts";
import { killProcesses } from "./host.ts";
import { mountsUnder, removeTree, unmountAll } from "./mounts.ts";
import { deleteBridge, fleetNames, fleetNamespaces, fleetVeths } from "./network.ts";
import { run } from "./run.ts";

/** What a sweep removed, for the report. */
export interface SweepReport {
  namespaces: string[];
  cgroups: string[];
  veths: string[];
  mounts: string[];
  dirs: string[];
}

/**
 * Removes what a crashed galley left of this fleet and what the state no longer names: network
 * namespaces and veths by name pattern (with every process in them), overlays of hosts that do
 * not run, folders of hosts the state does not know.
 */
export async function sweepLeftovers(fleet: Fleet): Promise<SweepReport> {
  const report: SweepReport = { namespaces: [], cgroups: [], veths: [], mounts: [], dirs: [] };
  const known = new Set(fleet.hosts().map((host) => host.netns));
  for (const netns of await fleetNamespaces(fleet.id)) {
    if (known.has(netns)) continue;
    await killProcesses({ netns, pid: undefined, pidStart: undefined });
    await run(["ip", "netns", "delete", netns]);
    report.namespaces.push(netns);
  }
  // cgroups of hosts that do not run (a crash, a killed launcher); a running host's are its own
  const running = new Set(
    fleet
      .hosts()
      .filter((host) => host.status === "running")
      .map((host) => host.netns),
  );
  for (const machine of cgroupMachines(fleetNames(fleet.id).netnsPrefix)) {
    if (running.has(machine)) continue;
    await killProcesses({ netns: machine, pid: undefined, pidStart: undefined });
    if (removeHostCgroups(machine)) report.cgroups.push(machine);
  }
  const veths = new Set(fleet.hosts().map((host) => host.veth));
  for (const veth of await fleetVeths(fleet.id)) {
    if (veths.has(veth)) continue;
    await run(["ip", "link", "delete", veth]);
    report.veths.push(veth);
  }
  for (const host of fleet.hosts()) {
    if (host.status === "running") continue;
    const merged = hostPaths(fleet.paths, host.name).merged;
    const mounts = mountsUnder(merged);
    if (mounts.length > 0) {
      await killProcesses(host);
      await unmountAll(merged);
      report.mounts.push(...mounts);
    }
  }
  const names = new Set(fleet.hosts().map((host) => host.name));
  const entries = existsSync(fleet.paths.dir)
    ? await fs.readdir(fleet.paths.dir, { withFileTypes: true })
    : [];
  for (const entry of entries) {
    if (!entry.isDirectory() || names.has(entry.name)) continue;
    await removeTree(path.join(fleet.paths.dir, entry.name));
    report.dirs.push(entry.name);
  }
  return report;
}

/**
 * Removes everything of fleet `id` on the machine, found by name and path alone (works when
 * state.json is gone or corrupted): processes in its namespaces, the namespaces, veths, mounts
 * under the state folder, the bridge, and the state folder itself.
 */
export async function sweepFleet(id: string, paths: FleetPaths): Promise<SweepReport> {
  const report: SweepReport = { namespaces: [], cgroups: [], veths: [], mounts: [], dirs: [] };
  for (const netns of await fleetNamespaces(id)) {
    await killProcesses({ netns, pid: undefined, pidStart: undefined });
    await run(["ip", "netns", "delete", netns]);
    report.namespaces.push(netns);
  }
  for (const machine of cgroupMachines(fleetNames(id).netnsPrefix)) {
    await killProcesses({ netns: machine, pid: undefined, pidStart: undefined });
    if (removeHostCgroups(machine)) report.cgroups.push(machine);
  }
  for (const veth of await fleetVeths(id)) {
    await run(["ip", "link", "delete", veth]);
    report.veths.push(veth);
  }
  report.mounts.push(...mountsUnder(paths.dir));
  await unmountAll(paths.dir);
  await deleteBridge(id);
  if (existsSync(paths.dir)) {
    await removeTree(paths.dir);
    report.dirs.push(paths.dir);
  }
  return report;
}
