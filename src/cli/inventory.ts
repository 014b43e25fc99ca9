import { exitCodes, GalleyError } from "../core/errors.ts";
import type { SshTarget } from "../hosts/target.ts";
import { loadInventory } from "../inventory/load.ts";
import { selectHosts } from "../inventory/select.ts";
import type { Inventory, InventoryGroup, InventoryHost } from "../inventory/types.ts";
import { paint, write, writeJson } from "./output.ts";

const options = {
  inventory: {
    type: "string",
    short: "i",
    description: "the inventory file: Galley YAML, Ansible INI or Ansible YAML (see docs/inventory.md)",
  },
  limit: {
    type: "string",
    short: "l",
    description: "only the hosts an Ansible host pattern selects, e.g. web:&prod:!web3",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  graph: { type: "boolean", default: false, description: "print only the tree of groups and host names" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  inventory?: string;
  limit?: string;
  json: boolean;
  graph: boolean;
}

/** `galley inventory -i FILE`: the hosts, groups and variables Galley reads from an inventory. */
export const inventoryCommand = {
  summary: "print the hosts, groups, variables and connection settings of an inventory",
  usage: "-i FILE [--limit PATTERN] [--json] [--graph]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const view = await inventoryView(values, positionals);
    if (values.json) writeJson(inventoryJson(view));
    else write(values.graph ? graph(view) : describe(view));
    return exitCodes.ok;
  },
};

/** The inventory the command shows: loaded from -i, narrowed by --limit. */
export async function inventoryView(values: Values, positionals: string[]): Promise<Inventory> {
  if (positionals.length > 0) {
    throw new GalleyError("USAGE", `galley inventory takes no arguments, got ${positionals.join(" ")}`, {
      hint: "usage: galley inventory -i FILE [--limit PATTERN] [--json] [--graph]",
    });
  }
  if (!values.inventory) {
    throw new GalleyError("USAGE", "galley inventory: which inventory?", { hint: "pass -i FILE" });
  }
  const inventory = await loadInventory(values.inventory);
  if (values.limit === undefined) return inventory;
  return limitTo(inventory, new Set(selectHosts(inventory, values.limit).map((h) => h.name)));
}

/** The inventory with only `selected` hosts, and only the groups that hold one of them. */
function limitTo(inventory: Inventory, selected: Set<string>): Inventory {
  const groups = new Map(inventory.groups.map((g) => [g.name, g]));
  const holds = (name: string, seen = new Set<string>()): boolean => {
    const group = groups.get(name)!;
    seen.add(name);
    return (
      group.hosts.some((h) => selected.has(h)) || group.children.some((c) => !seen.has(c) && holds(c, seen))
    );
  };
  const kept = inventory.groups
    .filter((g) => holds(g.name))
    .map((g) => ({
      ...g,
      hosts: g.hosts.filter((h) => selected.has(h)),
      children: g.children.filter((c) => holds(c)),
    }));
  return { ...inventory, hosts: inventory.hosts.filter((h) => selected.has(h.name)), groups: kept };
}

/** The --json shape: hosts and groups keyed by name; connection settings without key contents. */
export function inventoryJson(inventory: Inventory) {
  return {
    format: inventory.format,
    hosts: Object.fromEntries(
      inventory.hosts.map((h) => [
        h.name,
        { groups: h.groups, vars: h.vars, attributes: h.attributes, connection: connectionJson(h.target) },
      ]),
    ),
    groups: Object.fromEntries(
      inventory.groups.map((g) => [g.name, { hosts: g.hosts, children: g.children, vars: g.vars }]),
    ),
  };
}

function connectionJson(t: SshTarget) {
  return {
    address: t.address,
    port: t.port,
    user: t.user,
    keyFile: t.keyFile ?? null,
    become: t.become,
    becomeUser: t.becomeUser,
    knownHostsFile: t.knownHostsFile,
    hostKeyChecking: t.hostKeyChecking,
    jump: t.jump ?? null,
    connectTimeoutMs: t.connectTimeoutMs,
    retries: t.retries,
  };
}

/** The text view: the group tree from 'all', each group's own variables, each host's connection and own attributes. */
export function describe(inventory: Inventory): string {
  const hosts = new Map(inventory.hosts.map((h) => [h.name, h]));
  const shown = new Set<string>();
  const lines = [
    `${inventory.file} (${inventory.format}): ${count(inventory.hosts.length, "host")}, ${count(inventory.groups.length, "group")}`,
  ];
  walk(inventory, (group, depth, hostNames) => {
    const pad = "  ".repeat(depth);
    lines.push(`${pad}${paint("bold", `@${group.name}`)}`);
    for (const [key, value] of Object.entries(group.vars))
      lines.push(`${pad}  ${paint("gray", `${key}: ${show(value)}`)}`);
    return () => {
      for (const name of hostNames) {
        const host = hosts.get(name)!;
        if (shown.has(name)) {
          lines.push(`${pad}  - ${name} ${paint("gray", "(above)")}`);
          continue;
        }
        shown.add(name);
        lines.push(`${pad}  - ${name}  ${connection(host)}`);
        for (const [key, value] of Object.entries(host.attributes.host)) {
          lines.push(`${pad}      ${paint("gray", `${key}: ${show(value)}`)}`);
        }
      }
    };
  });
  return `${lines.join("\n")}\n`;
}

/** The --graph view, as ansible-inventory --graph prints it. */
export function graph(inventory: Inventory): string {
  const lines: string[] = [];
  walk(inventory, (group, depth, hostNames) => {
    const bar = "  |".repeat(depth);
    lines.push(depth === 0 ? `@${group.name}:` : `${bar.slice(0, -1)}|--@${group.name}:`);
    return () => {
      for (const host of hostNames) lines.push(`${bar}  |--${host}`);
    };
  });
  return `${lines.join("\n")}\n`;
}

/**
 * Visits the groups from 'all' down; `visit` returns what to do after the children (list the
 * hosts, as ansible-inventory --graph does). The hosts of 'all' are left out: they are in 'ungrouped'.
 */
function walk(
  inventory: Inventory,
  visit: (group: InventoryGroup, depth: number, hosts: string[]) => () => void,
): void {
  const groups = new Map(inventory.groups.map((g) => [g.name, g]));
  const descend = (name: string, depth: number) => {
    const group = groups.get(name);
    if (!group) return;
    const after = visit(group, depth, name === "all" ? [] : group.hosts);
    for (const child of group.children) descend(child, depth + 1);
    after();
  };
  descend("all", 0);
}

function connection(host: InventoryHost): string {
  const t = host.target;
  const parts = [`${t.user}@${t.address.includes(":") ? `[${t.address}]` : t.address}:${t.port}`];
  if (t.become) parts.push(`become ${t.becomeUser}`);
  if (t.jump) parts.push(`via ${t.jump.user}@${t.jump.address}:${t.jump.port}`);
  if (t.keyFile) parts.push(`key ${t.keyFile}`);
  if (t.hostKeyChecking === "accept-new") parts.push("accept-new host key");
  return paint("cyan", parts.join(", "));
}

function show(value: unknown): string {
  return typeof value === "string" && !value.includes("\n") ? value : JSON.stringify(value);
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}
