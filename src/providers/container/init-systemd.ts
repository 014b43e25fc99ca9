import { readFileSync, writeFileSync } from "node:fs";
import { aptMountPoint } from "./customize.ts";
import { type Boot, type BootSpec, launch } from "./launch.ts";
import { signal, waitExit } from "./procs.ts";

/**
 * Boots a host with systemd as PID 1 through systemd-nspawn, as on a real server. The machine
 * needs no systemd: `--keep-unit --register=no` keep nspawn off the (absent) system bus.
 */
export function bootSystemd(spec: BootSpec): Promise<Boot> {
  return launch(
    [
      "systemd-nspawn",
      "--boot",
      `--directory=${spec.merged}`,
      `--machine=${spec.machine}`,
      `--hostname=${spec.name}`,
      `--network-namespace-path=/run/netns/${spec.netns}`,
      "--register=no",
      "--keep-unit",
      "--console=read-only",
      "--timezone=off",
      "--resolv-conf=off",
      "--link-journal=no",
      `--bind-ro=${spec.repo}:${aptMountPoint}`,
    ],
    spec,
  );
}

// systemd powers off on SIGRTMIN+4 (glibc's SIGRTMIN is 34)
const sigPoweroff = 38;

/** Shuts a systemd host down cleanly (poweroff); false if it still runs after `timeoutMs`. */
export async function stopSystemd(boot: Boot, timeoutMs: number): Promise<boolean> {
  signal(boot.pid, sigPoweroff);
  // nspawn exits after its container: waiting for it means its own clean-up is done too
  if (!(await waitExit(boot.pid, boot.pidStart, timeoutMs))) return false;
  return waitExit(boot.launcher, undefined, 5_000);
}

/**
 * Raises fs.inotify.max_user_instances to what `hosts` systemd hosts need (each takes a few
 * instances; the default 128 stops at about 20 hosts). Never lowers it.
 */
export function raiseInotifyLimit(hosts: number): void {
  const file = "/proc/sys/fs/inotify/max_user_instances";
  const needed = 256 + hosts * 16;
  try {
    if (Number(readFileSync(file, "utf8")) < needed) writeFileSync(file, `${needed}\n`);
  } catch {
    // not fatal: only many hosts need it, and their boot then says what failed
  }
}
