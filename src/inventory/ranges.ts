import { GalleyError } from "../core/errors.ts";

// The patterns of Ansible's parsing/utils/addresses.py: a host, IPv4 or IPv6 address, any of
// them with [x:y] ranges inside, and an optional :port (IPv6 only inside [brackets]:port)
const numericRange = String.raw`\[(?:[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const hexRange = String.raw`\[(?:[0-9a-f]+:[0-9a-f]+)(?::[0-9]+)?\]`;
const alphanumericRange = String.raw`\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]`;
const i6 = `(?:[0-9a-f]{1,4}|${hexRange})`;
const i4 = `(?:[01]?[0-9]{1,2}|2[0-4][0-9]|25[0-5]|${numericRange})`;
const label = String.raw`(?:[\p{L}\p{N}_]|${alphanumericRange})(?:[\p{L}\p{N}_-]|${alphanumericRange})*(?<![_-])`;
const patterns = {
  bracketedHostPort: /^\[(.+)\]:([0-9]+)$/,
  hostPort: /^((?:[^:[\]]|\[[^\]]*\])*):([0-9]+)$/,
  ipv4: new RegExp(String.raw`^(?:${i4}\.){3}${i4}$`, "iu"),
  // Python's re.match anchors every alternative at the start but only the last one at the end
  ipv6: new RegExp(
    `^(?:(?:${i6}:){7}${i6}|(?:${i6}:){1,6}:|(?:${i6}:)(?::${i6}){1,6}|(?:${i6}:){2}(?::${i6}){1,5}|` +
      `(?:${i6}:){3}(?::${i6}){1,4}|(?:${i6}:){4}(?::${i6}){1,3}|(?:${i6}:){5}(?::${i6}){1,2}|` +
      String.raw`(?:${i6}:){6}(?::${i6})|:(?::${i6}){1,6}|${i6}?::|(?:0:){6}(?:${i6}\.){3}${i6}|` +
      String.raw`::(?:ffff:)?(?:${i6}\.){3}${i6}|(?:0:){5}ffff:(?:${i6}\.){3}${i6}$)`,
    "iu",
  ),
  hostname: new RegExp(String.raw`^${label}(?:\.${label})*$`, "iu"),
};

/**
 * Splits `host:port` like Ansible's parse_address; undefined when `address` is no valid host,
 * address or range pattern.
 *
 * @example parseAddress("www[01:20].example.com:2222") // { host: "www[01:20].example.com", port: 2222 }
 */
export function parseAddress(address: string): { host: string; port?: number } | undefined {
  let host = address;
  let port: number | undefined;
  for (const pattern of [patterns.bracketedHostPort, patterns.hostPort]) {
    const m = pattern.exec(host);
    if (m) {
      host = m[1]!;
      port = Number(m[2]);
    }
  }
  if (![patterns.ipv4, patterns.ipv6, patterns.hostname].some((p) => p.test(host))) return undefined;
  return port === undefined ? { host } : { host, port };
}

/** Host names and port of an inventory host entry: `web[1:3]:2222` is web1, web2, web3 on port 2222. */
export function expandHostPattern(pattern: string, where: string): { names: string[]; port?: number } {
  const address = parseAddress(pattern) ?? { host: pattern };
  const names = address.host.includes("[") ? expandRange(address.host, where) : [address.host];
  return address.port === undefined ? { names } : { names, port: address.port };
}

/** The most hosts one range pattern may expand to (several ranges in one name multiply). */
export const maxHostsPerPattern = 10_000;

const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * Expands the ranges of a host name as Ansible does: `[01:03]` keeps the leading zeros, `[a:c]`
 * runs through letters, `[1:9:2]` steps; several ranges multiply.
 */
export function expandRange(
  name: string,
  where: string,
  budget = maxHostsPerPattern,
  pattern = name,
): string[] {
  const fail = (why: string): never => {
    throw new GalleyError("INVENTORY_INVALID", `${where}: host range ${name}: ${why}`, {
      hint: "write a range as [begin:end] or [begin:end:step], e.g. www[01:20].example.com or db-[a:f]",
    });
  };
  const tooMany = (): never => {
    throw new GalleyError(
      "INVENTORY_INVALID",
      `${where}: host range ${pattern} expands to more than ${maxHostsPerPattern} hosts`,
      { hint: "narrow the range, or split the fleet into several inventories" },
    );
  };
  const parts = name.replace("[", "|").replace("]", "|").split("|");
  if (parts.length !== 3) fail("a [ without its ] (or a | in the name)");
  const [head, range, tail] = parts as [string, string, string];
  const bounds = range.split(":");
  if (bounds.length !== 2 && bounds.length !== 3) fail("it must be begin:end or begin:end:step");
  const begin = bounds[0] || "0";
  const end = bounds[1]!;
  const step = bounds.length === 3 ? pythonInt(bounds[2]!, fail) : 1;
  if (!end) fail("it must have an end");
  const width = begin[0] === "0" && begin.length > 1 ? begin.length : 0;
  if (width && width !== end.length) fail("begin and end must have the same number of digits");
  const fill = (value: string | number) => zfill(String(value), width);
  let sequence: (string | number)[];
  const first = letters.indexOf(begin);
  const last = letters.indexOf(end);
  if (first >= 0 && last >= 0 && step > 0) {
    if (first > last) fail("begin must come before end");
    sequence = [...letters.slice(first, last + 1)].filter((_, i) => i % step === 0);
  } else {
    const from = pythonInt(begin, fail);
    const to = pythonInt(end, fail);
    if (step === 0) fail("the step cannot be 0");
    // counted before it is built: h[0:99999999] would take minutes and gigabytes
    const count =
      step > 0
        ? to >= from
          ? Math.floor((to - from) / step) + 1
          : 0
        : from >= to + 2
          ? Math.floor((from - to - 2) / -step) + 1
          : 0;
    if (count > budget) tooMany();
    sequence = [];
    for (let i = from; step > 0 ? i <= to : i >= to + 2; i += step) sequence.push(i);
  }
  if (sequence.length > budget) tooMany();
  // several ranges multiply: each item's own ranges share what is left of the budget
  const inner = Math.floor(budget / Math.max(sequence.length, 1));
  return sequence.flatMap((item) => {
    const host = head + fill(item) + tail;
    return host.includes("[") ? expandRange(host, where, inner, pattern) : [host];
  });
}

function pythonInt(text: string, fail: (why: string) => never): number {
  const trimmed = text.trim();
  if (!/^[-+]?\d+(?:_\d+)*$/.test(trimmed)) fail(`${JSON.stringify(text)} is not a number`);
  return Number(trimmed.replaceAll("_", ""));
}

// Python's str.zfill: pad with zeros after the sign
function zfill(text: string, width: number): string {
  const sign = /^[-+]/.test(text) ? text[0]! : "";
  return sign + text.slice(sign.length).padStart(width - sign.length, "0");
}
