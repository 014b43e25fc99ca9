import type { Facts } from "../core/host.ts";
import { parseOsRelease } from "./facts.ts";

const mark = "@@galley-facts@@";

/**
 * One POSIX shell script that prints every fact in delimited sections: facts cost one round trip.
 * Each section prints what LocalHost reads through Node (uname, /proc, getpwuid, getifaddrs).
 */
export const factsScript = [
  `s() { printf '\\n${mark} %s\\n' "$1"; }`,
  "s hostname; uname -n",
  // hostname -f asks the resolver, which may hang on a host without DNS
  "s fqdn; { command -v timeout >/dev/null && timeout 2 hostname -f || hostname -f; } 2>/dev/null",
  "s uname; uname -s; uname -r; uname -m",
  "s os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null",
  "s cpus; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN",
  's memory; while read -r k v _; do [ "$k" = MemTotal: ] && echo "$v"; done < /proc/meminfo',
  "s init; cat /proc/1/comm 2>/dev/null",
  "s links; ip -o link show 2>/dev/null",
  "s addresses; ip -o addr show 2>/dev/null",
  "s inet6; command -v ip >/dev/null || cat /proc/net/if_inet6 2>/dev/null",
  "s id; id -un; id -u; id -g",
  // the home of the passwd entry, as getpwuid gives it to LocalHost; $HOME only when there is none
  `s home; getent passwd "$(id -u)" 2>/dev/null | cut -d: -f6 | grep . || echo "$HOME"`,
  "s end",
].join("\n");

/** Parses the output of `factsScript` into Facts, field by field as LocalHost gathers them. */
export function parseFacts(output: string): Facts {
  const sections = splitSections(output);
  const lines = (name: string) => (sections.get(name) ?? "").split("\n").filter((line) => line !== "");
  const first = (name: string) => lines(name)[0]?.trim() ?? "";
  const [kernel = "", kernelRelease = "", machine = ""] = lines("uname");
  const [userName = "", uid = "", gid = ""] = lines("id");
  const hostname = first("hostname");
  const memoryKb = Number(first("memory")) || 0;
  return {
    hostname: hostname.split(".")[0] ?? hostname,
    fqdn: first("fqdn") || hostname,
    os: {
      kernel: kernel.toLowerCase(),
      kernelRelease,
      ...parseOsRelease(sections.get("os-release") ?? ""),
    },
    arch: nodeArch(machine),
    cpus: Number(first("cpus")) || 1,
    memoryMb: Math.round(memoryKb / 1024),
    init: first("init") === "systemd" ? "systemd" : "sysv",
    addresses: parseAddresses(lines("links"), lines("addresses"), lines("inet6")),
    user: { name: userName, uid: Number(uid), gid: Number(gid), home: first("home") },
  };
}

function splitSections(output: string): Map<string, string> {
  const sections = new Map<string, string>();
  const parts = output.split(`\n${mark} `);
  for (const part of parts.slice(1)) {
    const newline = part.indexOf("\n");
    const name = newline === -1 ? part : part.slice(0, newline);
    sections.set(name, newline === -1 ? "" : part.slice(newline + 1));
  }
  return sections;
}

/** `uname -m` in Node's vocabulary, then "x86_64" for x64: what LocalHost reports on that machine. */
export function nodeArch(machine: string): string {
  const names: Record<string, string> = {
    x86_64: "x86_64",
    amd64: "x86_64",
    aarch64: "arm64",
    arm64: "arm64",
    i386: "ia32",
    i686: "ia32",
    ppc64le: "ppc64",
    loongarch64: "loong64",
  };
  if (names[machine]) return names[machine];
  if (/^armv\d/.test(machine)) return "arm";
  return machine;
}

/**
 * Non-loopback addresses in the order Node's os.networkInterfaces() lists them: getifaddrs gives
 * every IPv4 address, then every IPv6 one; Node groups them by interface in order of first sight.
 */
function parseAddresses(links: string[], addrLines: string[], inet6: string[]): Facts["addresses"] {
  const loopback = new Set<string>();
  for (const line of links) {
    const match = /^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>/.exec(line);
    if (match?.[2]?.split(",").includes("LOOPBACK")) loopback.add(match[1]!);
  }
  const found: Facts["addresses"] = [];
  for (const line of addrLines) {
    const match = /^\d+:\s+([^\s@]+)(?:@\S+)?\s+(inet6?)\s+([^/\s]+)/.exec(line);
    if (!match || loopback.has(match[1]!)) continue;
    found.push({ interface: match[1]!, family: match[2] === "inet" ? "ipv4" : "ipv6", address: match[3]! });
  }
  // without ip(8): IPv6 from /proc (IPv4 has no simple /proc listing)
  for (const line of inet6) {
    const [hex, , , , flags, name] = line.trim().split(/\s+/);
    if (!hex || !name || name === "lo" || flags === undefined) continue;
    found.push({ interface: name, family: "ipv6", address: compressIpv6(hex) });
  }
  const ordered = [...found.filter((a) => a.family === "ipv4"), ...found.filter((a) => a.family === "ipv6")];
  const names = [...new Set(ordered.map((a) => a.interface))];
  return names.flatMap((name) => ordered.filter((a) => a.interface === name));
}

function compressIpv6(hex: string): string {
  const groups = (hex.match(/.{4}/g) ?? []).map((group) => Number.parseInt(group, 16).toString(16));
  const text = groups.join(":");
  // the longest run of zero groups becomes "::", as inet_ntop writes it
  const runs = [...`:${text}:`.matchAll(/:(?:0:){2,}/g)].sort((a, b) => b[0].length - a[0].length);
  const longest = runs[0];
  if (!longest) return text;
  const padded = `:${text}:`;
  const compressed = `${padded.slice(0, longest.index)}::${padded.slice(longest.index + longest[0].length)}`;
  return compressed.replace(/^:(?!:)/, "").replace(/(?<!:):$/, "");
}
