import { accessSync, constants, readFileSync } from "node:fs";
import { GalleyError } from "../../core/errors.ts";

/** A machine program the provider runs, and the Debian package that has it. */
interface Tool {
  program: string;
  pkg: string;
}

const dirs = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Tools every subcommand needs. */
export const baseTools: Tool[] = [
  { program: "ip", pkg: "iproute2" },
  { program: "nsenter", pkg: "util-linux" },
  { program: "unshare", pkg: "util-linux" },
  { program: "flock", pkg: "util-linux" },
  { program: "mount", pkg: "mount" },
  { program: "ssh-keygen", pkg: "openssh-client" },
];

/** Tools that building the image and the local apt repository need. */
export const buildTools: Tool[] = [
  { program: "apt-get", pkg: "apt" },
  { program: "dpkg-deb", pkg: "dpkg" },
  { program: "dpkg-scanpackages", pkg: "dpkg-dev" },
  { program: "chroot", pkg: "coreutils" },
  { program: "setpriv", pkg: "util-linux" },
];

/** The tool that boots systemd hosts. */
export const nspawnTool: Tool = { program: "systemd-nspawn", pkg: "systemd-container" };

/** Where a program is on the machine, or undefined. */
export function which(program: string): string | undefined {
  for (const dir of dirs) {
    try {
      accessSync(`${dir}/${program}`, constants.X_OK);
      return `${dir}/${program}`;
    } catch {}
  }
  return undefined;
}

/**
 * Refuses, with a clear message and what to do, to run anywhere the provider cannot work: not
 * Linux, not root (with CAP_SYS_ADMIN and CAP_NET_ADMIN), or a machine tool missing.
 */
export function preflight(tools: Tool[] = baseTools): void {
  if (process.platform !== "linux") {
    throw new GalleyError(
      "PROVIDER_FAILED",
      `the container provider needs Linux (network namespaces, overlayfs); this is ${process.platform}`,
      { hint: "run galley hosts on a Linux machine or VM, as root" },
    );
  }
  if (process.getuid?.() !== 0) {
    throw new GalleyError(
      "PROVIDER_FAILED",
      "the container provider needs root: it creates network namespaces, bridges and mounts",
      {
        hint: "run it as root (sudo galley hosts …) on a machine or VM you may change",
      },
    );
  }
  const caps = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync("/proc/self/status", "utf8"))?.[1];
  const effective = caps ? BigInt(`0x${caps}`) : 0n;
  const missingCaps = [
    [12n, "CAP_NET_ADMIN"],
    [21n, "CAP_SYS_ADMIN"],
  ].filter(([bit]) => (effective & (1n << (bit as bigint))) === 0n);
  if (missingCaps.length > 0) {
    throw new GalleyError(
      "PROVIDER_FAILED",
      `root here lacks ${missingCaps.map(([, name]) => name).join(" and ")}: probably an unprivileged container`,
      { hint: "run galley hosts on the machine itself or in a privileged container/VM" },
    );
  }
  requireTools(tools);
}

/** Refuses to go on when a machine tool is missing, naming the Debian package to install. */
export function requireTools(tools: Tool[]): void {
  const missing = tools.filter((tool) => which(tool.program) === undefined);
  if (missing.length > 0) {
    const pkgs = [...new Set(missing.map((tool) => tool.pkg))];
    throw new GalleyError(
      "PROVIDER_FAILED",
      `the container provider needs ${missing.map((tool) => tool.program).join(", ")}, missing on this machine`,
      { hint: `apt-get install -y ${pkgs.join(" ")} (or run scripts/prepare-hosts.sh)` },
    );
  }
}

/** Checks for mmdebstrap or debootstrap and says which one builds images. */
export function bootstrapTool(): "mmdebstrap" | "debootstrap" {
  if (which("mmdebstrap")) return "mmdebstrap";
  if (which("debootstrap")) return "debootstrap";
  throw new GalleyError(
    "PROVIDER_FAILED",
    "building the host image needs mmdebstrap or debootstrap, and neither is installed",
    {
      hint: "apt-get install -y mmdebstrap (or debootstrap), or run scripts/prepare-hosts.sh",
    },
  );
}
