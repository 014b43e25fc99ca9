import * as fs from "node:fs/promises";
import { GalleyError } from "../../core/errors.ts";
import { ensureAptRepo } from "./apt-repo.ts";
import { type Fleet, type FleetPaths, fleetId, fleetPaths, openFleet, withFleetLock } from "./fleet.ts";
import { bootHost, createHost, cutHost, destroyHost, killHost, stopHost } from "./host.ts";
import { ensureImage, type ImageName } from "./image.ts";
import { raiseInotifyLimit } from "./init-systemd.ts";
import { ensureKeyPair } from "./keys.ts";
import { ensureBridge, fleetNames } from "./network.ts";
import { baseTools, nspawnTool, preflight } from "./preflight.ts";
import { type HostRecord, type Init, readState } from "./state.ts";
import { hostAddress } from "./subnet.ts";
import { type SweepReport, sweepFleet, sweepLeftovers } from "./sweep.ts";

/** Progress lines (one per host and step) go here; the CLI prints them on stderr. */
export type Log = (line: string) => void;

/** What `up` is asked for: a count of new hosts, or names. */
export interface UpOptions {
  cwd: string;
  count?: number;
  names?: string[];
  image: ImageName;
  init: Init;
  log: Log;
}

const maxHosts = 253;
const namePattern = /^[a-z][a-z0-9-]{0,30}$/;

/**
 * Brings hosts up: `count` new ones named host1, host2… (the next free numbers), or the named
 * ones (created when new, booted again when stopped or killed). Builds the image and the apt
 * repository first if needed. Hosts come up in parallel; one failing does not stop the others.
 */
export async function up(options: UpOptions): Promise<HostRecord[]> {
  preflight([...baseTools, ...(options.init === "systemd" ? [nspawnTool] : [])]);
  for (const name of options.names ?? []) checkName(name);
  const image = await ensureImage(options.image, options.log);
  const repo = await ensureAptRepo(image, options.log);
  const paths = fleetPaths(options.cwd);
  return withFleetLock(
    paths,
    async () => {
      await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 });
      const fleet = (await openFleet(paths, true))!;
      await sweepLeftovers(fleet);
      await ensureKeyPair(paths.clientKey, `galley-hosts@${fleet.id}`);
      const subnet = await ensureBridge(fleet.id, fleet.state.subnet || undefined);
      fleet.state.subnet = subnet.cidr;
      fleet.state.gateway = subnet.gateway;
      const wanted = options.names ? [...new Set(options.names)] : nextNames(fleet, options.count ?? 1);
      const toCreate: HostRecord[] = [];
      const toBoot: HostRecord[] = [];
      for (const name of wanted) {
        const existing = fleet.host(name);
        if (existing?.status === "running") continue;
        if (existing && existing.status !== "failed") {
          toBoot.push(existing);
          continue;
        }
        // a failed host is made again from scratch, at the same address
        if (existing) await destroyHost(fleet, existing);
        const index = existing?.index ?? freeIndex(fleet);
        const { netnsPrefix, vethPrefix } = fleetNames(fleet.id);
        const host: HostRecord = {
          name,
          index,
          address: hostAddress(subnet, index),
          init: options.init,
          image: image.name,
          netns: `${netnsPrefix}${name}`,
          veth: `${vethPrefix}${index}`,
          layers: [repo.layer, image.rootfs],
          repo: repo.repo,
          status: "creating",
          cut: false,
          createdAt: new Date().toISOString(),
        };
        fleet.state.hosts[name] = host;
        toCreate.push(host);
      }
      await fleet.save();
      const systemdHosts = fleet.hosts().filter((host) => host.init === "systemd").length;
      if (systemdHosts > 0) raiseInotifyLimit(systemdHosts);
      const failures = await parallel([...toCreate, ...toBoot], 16, async (host) => {
        if (host.status === "creating") {
          options.log(`${host.name}: creating (${host.address})`);
          await createHost(fleet, host);
        } else {
          // stopped, killed or crashed: clear what is left of its last boot first
          await stopHost(fleet, host);
        }
        await bootHost(fleet, host, options.log);
      });
      for (const { item, error } of failures) {
        item.status = item.status === "creating" ? "failed" : "crashed";
        options.log(`${item.name}: failed: ${(error as Error).message.split("\n")[0]}`);
      }
      await fleet.save();
      if (failures.length > 0) throw combined(failures.map((f) => ({ name: f.item.name, error: f.error })));
      return wanted.map((name) => fleet.host(name)!);
    },
    options.log,
  );
}

/** The fleet's hosts with their current status (empty when there is no fleet). */
export async function list(cwd: string): Promise<{ paths: FleetPaths; fleet: Fleet | undefined }> {
  const paths = fleetPaths(cwd);
  return { paths, fleet: await openFleet(paths, false, false) };
}

/** The actions on existing hosts, by name. */
export const hostActions = {
  stop: async (fleet: Fleet, host: HostRecord) => {
    if (host.status === "running" || host.status === "crashed") await stopHost(fleet, host);
  },
  start: async (fleet: Fleet, host: HostRecord, log: Log) => {
    if (host.status === "running") return;
    if (host.status === "failed") {
      throw new GalleyError("PROVIDER_FAILED", `host ${host.name} never came up, so it cannot be started`, {
        hint: `galley hosts up ${host.name} makes it again`,
      });
    }
    await stopHost(fleet, host);
    // after a reboot of the machine the bridge is gone too
    await ensureBridge(fleet.id, fleet.state.subnet);
    if (host.init === "systemd") raiseInotifyLimit(fleet.hosts().filter((h) => h.init === "systemd").length);
    await bootHost(fleet, host, log);
  },
  kill: (fleet: Fleet, host: HostRecord) => killHost(fleet, host),
  cut: async (_fleet: Fleet, host: HostRecord) => cutHost(host, true),
  connect: async (_fleet: Fleet, host: HostRecord) => cutHost(host, false),
  destroy: async (fleet: Fleet, host: HostRecord) => {
    await destroyHost(fleet, host);
    delete fleet.state.hosts[host.name];
  },
} as const;

/** The name of an action on hosts. */
export type HostAction = keyof typeof hostActions;

/** Runs an action on named hosts of the fleet in `cwd`, in parallel; fails naming each host that failed. */
export async function onHosts(
  cwd: string,
  action: HostAction,
  names: string[],
  log: Log,
): Promise<HostRecord[]> {
  preflight(action === "start" ? [...baseTools, nspawnTool] : baseTools);
  const paths = fleetPaths(cwd);
  return withFleetLock(
    paths,
    async () => {
      const fleet = await openFleet(paths, false);
      const hosts = names.map((name) => {
        const host = fleet?.host(name);
        if (!host) throw unknownHost(name, paths, fleet);
        return host;
      });
      const failures = await parallel(hosts, 16, async (host) => {
        await hostActions[action](fleet!, host, log);
        if (action !== "start") log(`${host.name}: ${pastTense[action]}`);
      });
      await fleet!.save();
      if (failures.length > 0) throw combined(failures.map((f) => ({ name: f.item.name, error: f.error })));
      return hosts;
    },
    log,
  );
}

const pastTense: Record<HostAction, string> = {
  stop: "stopped",
  start: "started",
  kill: "killed",
  cut: "link cut",
  connect: "link reconnected",
  destroy: "destroyed",
};

/**
 * Destroys the whole fleet: every host, the bridge and the state folder. Works from names and
 * paths alone, so also when state.json is gone or corrupted.
 */
export async function down(
  cwd: string,
  log: Log,
): Promise<SweepReport & { hosts: string[]; bridge: string }> {
  preflight(baseTools);
  const paths = fleetPaths(cwd);
  const id = fleetId(paths);
  return withFleetLock(
    paths,
    async () => {
      // the names come from the state when it is readable, else from the namespaces found
      const state = await readState(paths.state).catch(() => undefined);
      const report = await sweepFleet(id, paths);
      const prefix = fleetNames(id).netnsPrefix;
      const found = report.namespaces.map((netns) => netns.slice(prefix.length));
      const hosts = [...new Set([...Object.keys(state?.hosts ?? {}), ...found])].sort();
      return { ...report, hosts, bridge: fleetNames(id).bridge };
    },
    log,
  );
}

/** The named host of the fleet in `cwd`, or PROVIDER_FAILED. */
export async function findHost(cwd: string, name: string): Promise<HostRecord> {
  const paths = fleetPaths(cwd);
  const fleet = await openFleet(paths, false, false);
  const host = fleet?.host(name);
  if (!host) throw unknownHost(name, paths, fleet);
  return host;
}

function unknownHost(name: string, paths: FleetPaths, fleet: Fleet | undefined): GalleyError {
  const names = fleet?.hosts().map((host) => host.name) ?? [];
  return new GalleyError("PROVIDER_FAILED", `no host ${name} in the fleet of ${paths.dir}`, {
    hint:
      names.length > 0
        ? `hosts: ${names.join(", ")}`
        : "there are no hosts here: galley hosts up 3 makes some",
  });
}

function checkName(name: string): void {
  if (!namePattern.test(name)) {
    throw new GalleyError("ARGS_INVALID", `"${name}" is not a valid host name`, {
      hint: "a lowercase letter, then up to 30 lowercase letters, digits or dashes (e.g. web1, db-1)",
    });
  }
}

function nextNames(fleet: Fleet, count: number): string[] {
  const names: string[] = [];
  for (let n = 1; names.length < count; n++) if (!fleet.host(`host${n}`)) names.push(`host${n}`);
  return names;
}

function freeIndex(fleet: Fleet): number {
  const used = new Set(fleet.hosts().map((host) => host.index));
  for (let index = 1; index <= maxHosts; index++) if (!used.has(index)) return index;
  throw new GalleyError("PROVIDER_FAILED", `a fleet holds at most ${maxHosts} hosts (one /24 subnet)`, {
    hint: "destroy hosts you no longer need, or use a second working folder for a second fleet",
  });
}

async function parallel<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<{ item: T; error: unknown }[]> {
  const failures: { item: T; error: unknown }[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch((error: unknown) => failures.push({ item, error }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return failures;
}

function combined(failures: { name: string; error: unknown }[]): GalleyError {
  if (failures.length === 1 && failures[0]!.error instanceof GalleyError) return failures[0]!.error;
  const lines = failures.map((f) => `${f.name}: ${(f.error as Error).message}`);
  return new GalleyError("PROVIDER_FAILED", `${failures.length} hosts failed:\n${lines.join("\n")}`, {
    hint: "see each host's console.log in .galley/hosts/<name>/; galley hosts destroy NAME removes one",
  });
}
