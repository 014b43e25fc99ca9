import * as fs from "node:fs/promises";
import * as path from "node:path";
import { aptMountPoint } from "./customize.ts";
import { type Boot, type BootSpec, launch } from "./launch.ts";
import { signal, waitExit } from "./procs.ts";
import { writeFileAtomic } from "../../hosts/atomic-write.ts";

/** Where the sysv PID 1 lives inside a host. */
export const sysvInitPath = "/usr/local/sbin/galley-init";

/**
 * PID 1 of a sysv host (the image's /bin/sh): starts the runlevel-2 services, sshd among them,
 * then reaps orphans (dash's `wait` collects any child) until SIGTERM stops the services and
 * every process in the host.
 */
export const sysvInit = `#!/bin/sh
# galley-init: PID 1 of a Galley sysv host (written by galley hosts at each boot)
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
halt() {
  echo "galley-init: stopping"
  for script in /etc/rc0.d/K*; do
    case "$script" in *hwclock*) continue ;; esac
    [ -x "$script" ] && "$script" stop
  done
  kill -TERM -1 2>/dev/null
  sleep 1
  kill -KILL -1 2>/dev/null
  exit 0
}
trap halt TERM INT PWR
for script in /etc/rc2.d/S*; do
  [ -x "$script" ] && "$script" start
done
if ! [ -s /run/sshd.pid ] || ! kill -0 "$(cat /run/sshd.pid)" 2>/dev/null; then
  mkdir -p /run/sshd && /usr/sbin/sshd
fi
echo "galley-init: runlevel 2 reached"
while :; do
  sleep 2147483647 &
  wait $!
done
`;

/** invoke-rc.d asks runlevel before it starts a service (HOSTS.md): without systemd, /usr/sbin/runlevel must answer "N 2". */
export const runlevelScript = `#!/bin/sh
# written by galley hosts: a sysv host is always in runlevel 2
echo "N 2"
`;

// runs on the machine inside the new namespaces, then becomes the host's PID 1
const launcherScript = `set -e
root="$1" repo="$2" name="$3"
mount --bind "$repo" "$root${aptMountPoint}"
mount -o remount,bind,ro "$root${aptMountPoint}"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$root/dev"
for node in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
  set -- $node
  mknod -m 666 "$root/dev/$1" c "$2" "$3"
done
mkdir "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$root/dev/pts"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mkdir -m 1777 "$root/run/lock"
echo "$name" > /proc/sys/kernel/hostname
cd "$root"
pivot_root . .
umount -l .
cd /
exec ${sysvInitPath}
`;

/** Writes the sysv PID 1 and the runlevel stub into the host's root (its overlay). */
export async function prepareSysv(merged: string): Promise<void> {
  await replaceFile(path.join(merged, sysvInitPath), sysvInit);
  // a symlink to systemctl in the image: replaced, never written through
  await replaceFile(path.join(merged, "usr/sbin/runlevel"), runlevelScript);
}

/**
 * Boots a sysv host: new mount, UTS, IPC and PID namespaces in the host's network namespace,
 * the overlay as root (pivot_root), then galley-init as PID 1.
 */
export function bootSysv(spec: BootSpec): Promise<Boot> {
  return launch(
    [
      "nsenter",
      `--net=/run/netns/${spec.netns}`,
      "--",
      "unshare",
      "--mount",
      "--uts",
      "--ipc",
      "--pid",
      "--fork",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      launcherScript,
      "galley-launch",
      spec.merged,
      spec.repo,
      spec.name,
    ],
    spec,
  );
}

/** Stops a sysv host: SIGTERM to its PID 1, which stops the services; false if it still runs after `timeoutMs`. */
export async function stopSysv(boot: Boot, timeoutMs: number): Promise<boolean> {
  signal(boot.pid, "SIGTERM");
  return waitExit(boot.pid, boot.pidStart, timeoutMs);
}

async function replaceFile(file: string, text: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, text, { mode: 0o755 });
}
