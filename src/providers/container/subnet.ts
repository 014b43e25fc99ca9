import { GalleyError } from "../../core/errors.ts";

/** A /24 subnet of the fleet's private bridge: the machine side is .1, host N is .(N+1). */
export interface Subnet {
  /** "10.201.7.0/24" */
  cidr: string;
  /** "10.201.7.1": the bridge's own address */
  gateway: string;
  /** the first three octets, "10.201.7" */
  prefix: string;
}

// 10.200.0.0/14: 1024 /24 subnets, rarely used by anything else
const base = (10 << 24) | (200 << 16);
const count = 1024;

/** The /24 subnet number `n` (0…1023) of Galley's space. */
export function subnetAt(n: number): Subnet {
  const value = base + (n % count) * 256;
  const prefix = [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255].join(".");
  return { cidr: `${prefix}.0/24`, gateway: `${prefix}.1`, prefix };
}

/** A subnet from its CIDR as state.json records it. */
export function parseSubnet(cidr: string): Subnet {
  const prefix = cidr.replace(/\.0\/24$/, "");
  return { cidr, gateway: `${prefix}.1`, prefix };
}

/** The address of host index `index` (1…253). */
export function hostAddress(subnet: Subnet, index: number): string {
  return `${subnet.prefix}.${index + 1}`;
}

/**
 * The fleet's subnet: the first free one from a start that the fleet id decides, skipping every
 * subnet that overlaps a prefix already in use on the machine (addresses and routes).
 *
 * @example pickSubnet("a1b2c3", ["10.200.0.0/16"]) // skips the 256 subnets of 10.200.x.x
 */
export function pickSubnet(fleetId: string, used: string[]): Subnet {
  const start = Number.parseInt(fleetId.slice(0, 6), 16) % count;
  const taken = used.map(parsePrefix).filter((p): p is Prefix => p !== undefined && p.length > 0);
  for (let step = 0; step < count; step++) {
    const subnet = subnetAt(start + step);
    const mine = parsePrefix(subnet.cidr)!;
    if (!taken.some((other) => overlaps(mine, other))) return subnet;
  }
  throw new GalleyError("PROVIDER_FAILED", "no free /24 subnet left in 10.200.0.0/14 on this machine", {
    hint: "galley hosts down in fleets you no longer need frees theirs (ip -4 route shows what is in use)",
  });
}

interface Prefix {
  value: number;
  length: number;
}

function parsePrefix(text: string): Prefix | undefined {
  const [address, bits] = text.split("/");
  const octets = (address ?? "").split(".").map(Number);
  if (octets.length !== 4 || octets.some((o) => !Number.isInteger(o) || o < 0 || o > 255)) return undefined;
  const length = bits === undefined ? 32 : Number(bits);
  if (!Number.isInteger(length) || length < 0 || length > 32) return undefined;
  const value = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  return { value, length };
}

function overlaps(a: Prefix, b: Prefix): boolean {
  const length = Math.min(a.length, b.length);
  const mask = length === 0 ? 0 : (0xffffffff << (32 - length)) >>> 0;
  return (a.value & mask) >>> 0 === (b.value & mask) >>> 0;
}
