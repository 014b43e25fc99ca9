import { existsSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GalleyError } from "../../core/errors.ts";
import { withLock } from "./lock.ts";
import { lastLines, run, runOk } from "./run.ts";
import { parseSubnet, pickSubnet, type Subnet } from "./subnet.ts";

/** A fleet's network names: all derived from the fleet id, so a crash leaves nothing unnamed. */
export interface FleetNames {
  bridge: string;
  /** prefix of the hosts' network namespaces: `<prefix><host>` */
  netnsPrefix: string;
  /** prefix of the machine-side veths: `<prefix><index>` */
  vethPrefix: string;
}

/** Names of fleet `id` (6 hex digits): bridge gly<id> (9 chars), veths gly<id>v<index> (≤ 13 of 15). */
export function fleetNames(id: string): FleetNames {
  return { bridge: `gly${id}`, netnsPrefix: `gly${id}-`, vethPrefix: `gly${id}v` };
}

// every fleet on the machine picks its subnet under this lock, so two never pick the same one
const networkLock = path.join(
  existsSync("/run/lock") ? "/run/lock" : os.tmpdir(),
  "galley-hosts-network.lock",
);

/**
 * The fleet's bridge with its gateway address, created when missing: with `cidr` (from state.json)
 * on that subnet, else on a free subnet chosen now. Returns the subnet.
 */
export async function ensureBridge(id: string, cidr: string | undefined): Promise<Subnet> {
  const { bridge } = fleetNames(id);
  return withLock(networkLock, "the machine's network", async () => {
    const used = await usedPrefixes(bridge);
    const subnet = cidr ? parseSubnet(cidr) : pickSubnet(id, used);
    if (!(await linkExists(bridge))) {
      await ipBatch(
        [`link add ${bridge} type bridge`, `link set ${bridge} up`],
        undefined,
        `creating bridge ${bridge}`,
      );
    }
    const addresses = await run(["ip", "-j", "-4", "addr", "show", "dev", bridge]);
    if (!addresses.stdout.includes(`"${subnet.gateway}"`)) {
      await ipBatch(
        [`addr add ${subnet.gateway}/24 dev ${bridge}`],
        undefined,
        `addressing bridge ${bridge}`,
      );
    }
    return subnet;
  });
}

/** Creates a host's network namespace with a veth pair: eth0 inside at `address`, `veth` on the bridge. */
export async function createHostLink(
  id: string,
  netns: string,
  veth: string,
  address: string,
): Promise<void> {
  const { bridge } = fleetNames(id);
  await ipBatch(
    [
      `netns add ${netns}`,
      `link add ${veth} type veth peer name eth0 netns ${netns}`,
      `link set ${veth} master ${bridge}`,
      `link set ${veth} up`,
    ],
    undefined,
    `creating the network of ${netns}`,
  );
  await ipBatch(
    ["link set lo up", `addr add ${address}/24 dev eth0`, "link set eth0 up"],
    netns,
    `addressing ${netns}`,
  );
}

/** Takes a host's machine-side link up or down: down, its peers time out as with a cut cable. */
export async function setLink(veth: string, up: boolean): Promise<void> {
  await runOk(["ip", "link", "set", veth, up ? "up" : "down"], `taking ${veth} ${up ? "up" : "down"}`);
}

/** Deletes a host's namespace (its eth0 and so the veth pair go with it) and the veth if left. */
export async function deleteHostLink(netns: string, veth: string): Promise<void> {
  await run(["ip", "netns", "delete", netns]);
  if (await linkExists(veth)) await run(["ip", "link", "delete", veth]);
}

/** Deletes the fleet's bridge. */
export async function deleteBridge(id: string): Promise<void> {
  const { bridge } = fleetNames(id);
  if (await linkExists(bridge)) await runOk(["ip", "link", "delete", bridge], `deleting bridge ${bridge}`);
}

/** Network namespaces of fleet `id` on the machine (found by name: works without state). */
export async function fleetNamespaces(id: string): Promise<string[]> {
  const { netnsPrefix } = fleetNames(id);
  const result = await run(["ip", "netns", "list"]);
  return result.stdout
    .split("\n")
    .map((line) => line.split(" ")[0] ?? "")
    .filter((name) => name.startsWith(netnsPrefix));
}

/** Machine-side veths of fleet `id` (found by name). */
export async function fleetVeths(id: string): Promise<string[]> {
  const { vethPrefix } = fleetNames(id);
  const result = await run(["ip", "-j", "link", "show"]);
  const links = JSON.parse(result.stdout || "[]") as { ifname: string }[];
  return links.map((link) => link.ifname).filter((name) => name.startsWith(vethPrefix));
}

/** Pids of every process in a network namespace. */
export async function namespacePids(netns: string): Promise<number[]> {
  const result = await run(["ip", "netns", "pids", netns]);
  return result.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** Whether a network interface exists on the machine. */
export async function linkExists(name: string): Promise<boolean> {
  return (await run(["ip", "link", "show", "dev", name])).code === 0;
}

// prefixes in use on the machine (its addresses and routes), except our own bridge's
async function usedPrefixes(ownBridge: string): Promise<string[]> {
  const prefixes: string[] = [];
  const addrs = JSON.parse((await run(["ip", "-j", "-4", "addr"])).stdout || "[]") as {
    ifname: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  for (const link of addrs) {
    if (link.ifname === ownBridge) continue;
    for (const info of link.addr_info ?? []) prefixes.push(`${info.local}/${info.prefixlen}`);
  }
  const routes = JSON.parse(
    (await run(["ip", "-j", "-4", "route", "show", "table", "all"])).stdout || "[]",
  ) as {
    dst: string;
    dev?: string;
  }[];
  for (const route of routes)
    if (route.dst !== "default" && route.dev !== ownBridge) prefixes.push(route.dst);
  return prefixes;
}

async function ipBatch(lines: string[], netns: string | undefined, what: string): Promise<void> {
  const argv = netns ? ["ip", "-n", netns, "-batch", "-"] : ["ip", "-batch", "-"];
  const result = await run(argv, { input: `${lines.join("\n")}\n` });
  if (result.code !== 0) {
    throw new GalleyError("PROVIDER_FAILED", `${what} failed: ${lastLines(result)}`, {
      hint: "galley hosts down removes what was half made; then run again",
    });
  }
}
