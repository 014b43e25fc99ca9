import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../../core/errors.ts";
import { cgroupPids, killCgroups, removeHostCgroups } from "./cgroups.ts";
import { type Fleet, hostPaths } from "./fleet.ts";
import { bootSystemd, stopSystemd } from "./init-systemd.ts";
import { bootSysv, prepareSysv, stopSysv } from "./init-sysv.ts";
import { authorize, ensureKeyPair, passwdEntry, publicKey } from "./keys.ts";
import { type Boot, type BootSpec, consoleTail } from "./launch.ts";
import { mountOverlay, removeTree, unmountAll } from "./mounts.ts";
import { createHostLink, deleteHostLink, linkExists, namespacePids, setLink } from "./network.ts";
import { isAlive, signal, waitExit } from "./procs.ts";
import { waitForSsh } from "./ready.ts";
import type { HostRecord } from "./state.ts";

/** How long a host may take from boot to a answering sshd, and to shut down. */
const bootTimeoutMs = 120_000;
const stopTimeoutMs = 60_000;

/**
 * Makes a new host's disk and network: its folder, overlay (image layers + own upper folder),
 * hostname, machine id, host key, the fleet's key for root and galley, and its namespace and veth.
 */
export async function createHost(fleet: Fleet, host: HostRecord): Promise<void> {
  const paths = hostPaths(fleet.paths, host.name);
  for (const dir of [paths.upper, paths.work, paths.merged])
    await fs.mkdir(dir, { recursive: true, mode: 0o755 });
  await mountOverlay(host.layers, paths.upper, paths.work, paths.merged);
  const root = paths.merged;
  await fs.writeFile(path.join(root, "etc/hostname"), `${host.name}\n`);
  await fs.writeFile(
    path.join(root, "etc/hosts"),
    `127.0.0.1\tlocalhost\n127.0.1.1\t${host.name}\n${host.address}\t${host.name}\n::1\tlocalhost ip6-localhost ip6-loopback\n`,
  );
  await fs.writeFile(path.join(root, "etc/machine-id"), `${randomBytes(16).toString("hex")}\n`);
  await ensureKeyPair(paths.hostKey, `root@${host.name}`);
  for (const suffix of ["", ".pub"]) {
    const target = path.join(root, "etc/ssh", `ssh_host_ed25519_key${suffix}`);
    await fs.copyFile(`${paths.hostKey}${suffix}`, target);
    await fs.chmod(target, suffix ? 0o644 : 0o600);
  }
  const clientKey = await publicKey(fleet.paths.clientKey);
  for (const user of ["root", "galley"]) {
    const entry = await passwdEntry(root, user);
    await authorize(root, entry.home, entry.uid, entry.gid, clientKey);
  }
  await ensureHostLink(fleet, host);
}

/** The host's namespace and veth, made again when missing (after a reboot of the machine, or a crash). */
async function ensureHostLink(fleet: Fleet, host: HostRecord): Promise<void> {
  if (await linkExists(host.veth)) return;
  await deleteHostLink(host.netns, host.veth);
  await createHostLink(fleet.id, host.netns, host.veth, host.address);
}

/** Boots a created host and waits for its sshd; records its PID 1. */
export async function bootHost(fleet: Fleet, host: HostRecord, log: (line: string) => void): Promise<void> {
  const paths = hostPaths(fleet.paths, host.name);
  await mountOverlay(host.layers, paths.upper, paths.work, paths.merged);
  if (host.init === "sysv") await prepareSysv(paths.merged);
  await ensureHostLink(fleet, host);
  await setLink(host.veth, true);
  host.cut = false;
  const spec = bootSpec(fleet, host);
  log(`${host.name}: booting (${host.init})`);
  const started = performance.now();
  const boot = host.init === "systemd" ? await bootSystemd(spec) : await bootSysv(spec);
  host.launcher = boot.launcher;
  host.pid = boot.pid;
  host.pidStart = boot.pidStart;
  await fleet.save();
  const ready = await waitForSsh(host.address, () => isAlive(boot.pid, boot.pidStart), bootTimeoutMs);
  if (!ready) {
    const alive = isAlive(boot.pid, boot.pidStart);
    throw new GalleyError(
      "PROVIDER_FAILED",
      `host ${host.name} (${host.address}): ${alive ? "sshd did not answer within 120 s" : "its PID 1 exited during boot"}; its console ends with:\n${await consoleTail(spec)}`,
      { hint: `full console: ${spec.consoleLog}; galley hosts destroy ${host.name} removes it` },
    );
  }
  host.status = "running";
  log(`${host.name}: sshd ready at ${host.address} (${((performance.now() - started) / 1000).toFixed(1)}s)`);
}

/** Shuts a host down cleanly (poweroff / SIGTERM), then unmounts its overlay. */
export async function stopHost(fleet: Fleet, host: HostRecord): Promise<void> {
  const boot = bootOf(host);
  if (boot && isAlive(boot.pid, boot.pidStart)) {
    const stopped =
      host.init === "systemd" ? await stopSystemd(boot, stopTimeoutMs) : await stopSysv(boot, stopTimeoutMs);
    if (!stopped) await killProcesses(host);
  }
  removeHostCgroups(host.netns);
  await unmountAll(hostPaths(fleet.paths, host.name).merged);
  host.status = "stopped";
}

/**
 * Kills a host like a power cut: its link goes down first (peers time out instead of getting
 * an instant reset), then SIGKILL to its PID 1 ends every process of its PID namespace.
 */
export async function killHost(fleet: Fleet, host: HostRecord): Promise<void> {
  if (await linkExists(host.veth)) await setLink(host.veth, false);
  host.cut = false;
  await killProcesses(host);
  await unmountAll(hostPaths(fleet.paths, host.name).merged);
  host.status = "killed";
}

/** Removes a host: its processes, overlay, namespace, veth and folder (the upper folder: its disk). */
export async function destroyHost(fleet: Fleet, host: HostRecord): Promise<void> {
  await killProcesses(host);
  await deleteHostLink(host.netns, host.veth);
  await removeTree(hostPaths(fleet.paths, host.name).dir);
}

/** Cuts (down) or reconnects (up) a running host's link; its processes keep running. */
export async function cutHost(host: HostRecord, cut: boolean): Promise<void> {
  await setLink(host.veth, !cut);
  host.cut = cut;
}

/**
 * SIGKILL to the host's PID 1, to its cgroups and to anything else left in its network namespace;
 * waits for them, then removes the host's cgroups. (The host's netns is also its machine name.)
 */
export async function killProcesses(host: Pick<HostRecord, "pid" | "pidStart" | "netns">): Promise<void> {
  if (host.pid !== undefined && isAlive(host.pid, host.pidStart)) {
    signal(host.pid, "SIGKILL");
    await waitExit(host.pid, host.pidStart, 10_000);
  }
  killCgroups(host.netns);
  // the launchers and any `galley hosts exec` still running there (nsenter keeps our cgroup)
  const pids = new Set([...cgroupPids(host.netns), ...(await namespacePids(host.netns))]);
  for (const pid of pids) signal(pid, "SIGKILL");
  for (const pid of pids) await waitExit(pid, undefined, 10_000);
  removeHostCgroups(host.netns);
}

function bootSpec(fleet: Fleet, host: HostRecord): BootSpec {
  const paths = hostPaths(fleet.paths, host.name);
  return {
    name: host.name,
    machine: host.netns,
    merged: paths.merged,
    netns: host.netns,
    repo: host.repo,
    consoleLog: paths.consoleLog,
  };
}

function bootOf(host: HostRecord): Boot | undefined {
  if (host.pid === undefined || host.pidStart === undefined || host.launcher === undefined) return undefined;
  return { pid: host.pid, pidStart: host.pidStart, launcher: host.launcher };
}
