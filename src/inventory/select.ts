import { GalleyError } from "../core/errors.ts";
import { parseAddress } from "./ranges.ts";
import type { Inventory, InventoryGroup, InventoryHost } from "./types.ts";

/**
 * The hosts an Ansible host pattern selects, in Ansible's order: names and groups, `all` or `*`,
 * unions `a:b` and `a,b`, intersections `a:&b`, exclusions `a:!b`, globs `www*`, regular
 * expressions `~web\d+`, subscripts `web[0]` and `web[0:2]`. Unlike Ansible, which warns and goes
 * on, a part that matches nothing (likely a typo) and a pattern that selects no host are errors.
 *
 * @example selectHosts(inventory, "web:&prod:!web3")
 */
export function selectHosts(inventory: Inventory, pattern = "all"): InventoryHost[] {
  const hosts = new Map(inventory.hosts.map((h) => [h.name, h]));
  const groups = new Map(inventory.groups.map((g) => [g.name, g]));
  const fail = (message: string): never => {
    throw new GalleyError("INVENTORY_INVALID", `${inventory.file}: ${message}`, {
      hint: `groups: ${listed([...groups.keys()])}; see: galley inventory -i ${inventory.file}`,
    });
  };
  let selected: string[] = [];
  for (const part of orderPatterns(splitHostPattern(pattern))) {
    if (hosts.has(part)) {
      if (!selected.includes(part)) selected.push(part);
      continue;
    }
    const operator = part[0] === "!" || part[0] === "&" ? part[0] : "";
    const matched = matchOne(part.slice(operator.length), groups, hosts, fail);
    if (matched.length === 0)
      fail(`--limit ${pattern}: ${part.slice(operator.length)} matches no group or host`);
    const set = new Set(matched);
    if (operator === "!") selected = selected.filter((h) => !set.has(h));
    else if (operator === "&") selected = selected.filter((h) => set.has(h));
    else selected.push(...matched.filter((h) => !selected.includes(h)));
  }
  if (selected.length === 0) fail(`--limit ${pattern} selects no host`);
  return selected.map((name) => hosts.get(name)!);
}

/** Ansible's split_host_pattern: commas, else colons outside [ranges] unless the whole is one address. */
export function splitHostPattern(pattern: string): string[] {
  const parts = pattern.includes(",")
    ? pattern.split(",")
    : parseAddress(pattern)
      ? [pattern]
      : (pattern.match(/(?:[^\s:[\]]|\[[^\]]*\])+/g) ?? []);
  return parts.map((p) => p.trim()).filter(Boolean);
}

// plain parts first, then intersections, then exclusions; only & and ! parts start from all
function orderPatterns(parts: string[]): string[] {
  const plain = parts.filter((p) => p[0] !== "!" && p[0] !== "&");
  return [
    ...(plain.length ? plain : ["all"]),
    ...parts.filter((p) => p[0] === "&"),
    ...parts.filter((p) => p[0] === "!"),
  ];
}

function matchOne(
  part: string,
  groups: Map<string, InventoryGroup>,
  hosts: Map<string, InventoryHost>,
  fail: (message: string) => never,
): string[] {
  const subscript = part[0] === "~" ? null : /^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$/.exec(part);
  const expression = subscript ? subscript[1]! : part;
  let test: RegExp;
  try {
    test = expression[0] === "~" ? new RegExp(`^(?:${expression.slice(1)})`) : globRegExp(expression);
  } catch {
    return fail(`invalid regular expression in host pattern ${part}`);
  }
  const matchingGroups = [...groups.keys()].filter((name) => test.test(name));
  const found = matchingGroups.flatMap((name) => groupHosts(groups, name));
  if (matchingGroups.length === 0 || expression[0] === "~" || /[.?*[]/.test(expression)) {
    found.push(...[...hosts.keys()].filter((name) => test.test(name)));
  }
  const unique = [...new Set(found)];
  if (!subscript) return unique;
  const start = Number(subscript[2] ?? subscript[3]);
  if (subscript[2] !== undefined) {
    const host = unique.at(start);
    return host === undefined ? fail(`${part}: no host at index ${start}`) : [host];
  }
  const end = subscript[5] ? Number(subscript[5]) : unique.length - 1;
  return unique.slice(start, end + 1);
}

// every host of a group and of its descendants, nearest first
function groupHosts(groups: Map<string, InventoryGroup>, name: string): string[] {
  const order = [name];
  for (let i = 0; i < order.length; i++) {
    for (const child of groups.get(order[i]!)?.children ?? []) if (!order.includes(child)) order.push(child);
  }
  return order.flatMap((g) => groups.get(g)?.hosts ?? []);
}

/** Python's fnmatch.translate: `*`, `?`, `[seq]` and `[!seq]`, the whole name. */
export function globRegExp(glob: string): RegExp {
  let source = "";
  for (let i = 0; i < glob.length; i++) {
    const char = glob[i]!;
    if (char === "*") source += ".*";
    else if (char === "?") source += ".";
    else if (char === "[") {
      let j = i + 1;
      if (glob[j] === "!") j++;
      if (glob[j] === "]") j++;
      while (j < glob.length && glob[j] !== "]") j++;
      if (j >= glob.length) source += "\\[";
      else {
        let set = glob.slice(i + 1, j).replaceAll("\\", "\\\\");
        if (set[0] === "!") set = `^${set.slice(1)}`;
        else if (set[0] === "^" || set[0] === "[") set = `\\${set}`;
        source += `[${set}]`;
        i = j;
      }
    } else source += char.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  }
  return new RegExp(`^(?:${source})$`, "s");
}

function listed(names: string[]): string {
  return names.length > 20 ? `${names.slice(0, 20).join(", ")} … (${names.length} in all)` : names.join(", ");
}
