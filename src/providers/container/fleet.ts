import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { inventoryText } from "./inventory.ts";
import { knownHostsText } from "./keys.ts";
import { withLock } from "./lock.ts";
import { fleetNames } from "./network.ts";
import { isAlive } from "./procs.ts";
import { type FleetState, type HostRecord, readState, writeAtomic, writeState } from "./state.ts";

/** Where a fleet keeps its files: `<cwd>/.galley/hosts/`. */
export interface FleetPaths {
  dir: string;
  state: string;
  /** beside the folder, so that `down` can delete the folder while holding it */
  lock: string;
  clientKey: string;
  knownHosts: string;
  inventory: string;
}

/** The paths of the fleet of working folder `cwd`. */
export function fleetPaths(cwd: string): FleetPaths {
  const dir = path.join(realpathSync(cwd), ".galley", "hosts");
  return {
    dir,
    state: path.join(dir, "state.json"),
    lock: path.join(path.dirname(dir), "hosts.lock"),
    clientKey: path.join(dir, "id_ed25519"),
    knownHosts: path.join(dir, "known_hosts"),
    inventory: path.join(dir, "inventory.yaml"),
  };
}

/** A short hash of the state folder's path: names the fleet's bridge, namespaces and veths. */
export function fleetId(paths: FleetPaths): string {
  return createHash("sha256").update(paths.dir).digest("hex").slice(0, 6);
}

/** One host's folder: its overlay's upper, work and merged folders, its console log and host key. */
export function hostPaths(paths: FleetPaths, name: string) {
  const dir = path.join(paths.dir, name);
  return {
    dir,
    upper: path.join(dir, "upper"),
    work: path.join(dir, "work"),
    merged: path.join(dir, "merged"),
    consoleLog: path.join(dir, "console.log"),
    hostKey: path.join(dir, "ssh_host_ed25519_key"),
  };
}

/** An open fleet: its paths, id and state, and a way to save them. Only used under the fleet's lock. */
export class Fleet {
  readonly paths: FleetPaths;
  readonly id: string;
  state: FleetState;
  #saving: Promise<void> = Promise.resolve();

  constructor(paths: FleetPaths, state: FleetState) {
    this.paths = paths;
    this.id = state.id;
    this.state = state;
  }

  /** The fleet's host, or undefined. */
  host(name: string): HostRecord | undefined {
    return Object.hasOwn(this.state.hosts, name) ? this.state.hosts[name] : undefined;
  }

  /** Hosts by index. */
  hosts(): HostRecord[] {
    return Object.values(this.state.hosts).sort((a, b) => a.index - b.index);
  }

  /** Writes state.json, known_hosts and inventory.yaml (atomically, one save at a time). */
  save(): Promise<void> {
    this.#saving = this.#saving.then(() => this.#write());
    return this.#saving;
  }

  async #write(): Promise<void> {
    await writeState(this.paths.state, this.state);
    const keys = [];
    for (const host of this.hosts()) {
      const pub = await fs
        .readFile(`${hostPaths(this.paths, host.name).hostKey}.pub`, "utf8")
        .catch(() => "");
      const [type, key] = pub.trim().split(/\s+/);
      if (type && key) keys.push({ name: host.name, address: host.address, hostKey: `${type} ${key}` });
    }
    await writeAtomic(this.paths.knownHosts, knownHostsText(keys));
    await writeAtomic(this.paths.inventory, inventoryText(this.state));
  }
}

/** Runs `fn` holding the fleet's lock: concurrent galley hosts commands on one fleet take turns. */
export function withFleetLock<T>(
  paths: FleetPaths,
  fn: () => Promise<T>,
  log: (line: string) => void,
): Promise<T> {
  return withLock(paths.lock, "the fleet", fn, () =>
    log("waiting for another galley hosts command on this fleet"),
  );
}

/** Opens the fleet's state (a new, empty one if none), with the status of each host brought up to date (see refreshStatus). */
export async function openFleet(
  paths: FleetPaths,
  create: boolean,
  locked = true,
): Promise<Fleet | undefined> {
  let state = await readState(paths.state);
  if (!state) {
    if (!create) return undefined;
    const id = fleetId(paths);
    state = { version: 1, id, bridge: fleetNames(id).bridge, subnet: "", gateway: "", hosts: {} };
  }
  const fleet = new Fleet(paths, state);
  refreshStatus(fleet, locked);
  return fleet;
}

/**
 * Brings statuses up to date under the fleet's lock: a running host whose PID 1 died crashed; a
 * host still "creating" was left by an interrupted `up`: running if it booted, else failed.
 */
export function refreshStatus(fleet: Fleet, locked: boolean): void {
  for (const host of fleet.hosts()) {
    const alive = isAlive(host.pid, host.pidStart);
    if (host.status === "running" && !alive) host.status = "crashed";
    // without the lock, a host "creating" may be in the hands of a running `up`
    if (host.status === "creating" && locked) host.status = alive ? "running" : "failed";
  }
}
