import { GalleyError } from "../core/errors.ts";
import { reservedKeys } from "../core/yaml.ts";

/** Where something was set: a file and, when known, a line. */
export interface Origin {
  file: string;
  line?: number | undefined;
}

/** A group as the parsers build it, before merging (Ansible's Group). */
export interface RawGroup {
  name: string;
  hosts: string[];
  children: string[];
  parents: string[];
  vars: Record<string, unknown>;
  origins: Record<string, Origin>;
  /** ansible_group_priority: orders groups of the same depth when their variables merge */
  priority: number;
  /** the longest path from 'all' (0); set by reconcile */
  depth: number;
}

/** A host as the parsers build it, before merging. */
export interface RawHost {
  name: string;
  vars: Record<string, unknown>;
  origins: Record<string, Origin>;
  /** the groups that list it directly */
  memberOf: Set<string>;
}

/** What every format parses into: Ansible's InventoryData, in insertion order. */
export interface RawInventory {
  file: string;
  groups: Map<string, RawGroup>;
  hosts: Map<string, RawHost>;
}

/** `file:line`, or the file alone. */
export function where(origin: Origin): string {
  return origin.line === undefined ? origin.file : `${origin.file}:${origin.line}`;
}

/** An empty inventory holding Ansible's two implicit groups, 'all' and its child 'ungrouped'. */
export function createRaw(file: string): RawInventory {
  const raw: RawInventory = { file, groups: new Map(), hosts: new Map() };
  addChild(raw, addGroup(raw, "all").name, addGroup(raw, "ungrouped").name, { file });
  return raw;
}

/** The group `name`, created when new. */
export function addGroup(raw: RawInventory, name: string): RawGroup {
  let group = raw.groups.get(name);
  if (!group) {
    group = { name, hosts: [], children: [], parents: [], vars: {}, origins: {}, priority: 1, depth: 0 };
    raw.groups.set(name, group);
  }
  return group;
}

/** The host `name`, created when new (a port counts only then, as in Ansible), and added to `group`. */
/** The most hosts one inventory may hold (ranges included): beyond, it is refused, not expanded into memory. */
export const maxHostsPerInventory = 10_000;

/** Adds a host (and its membership of `group`); past maxHostsPerInventory hosts, an error naming `origin`. */
export function addHost(raw: RawInventory, name: string, group?: string, port?: number, origin?: Origin) {
  let host = raw.hosts.get(name);
  if (!host) {
    if (raw.hosts.size >= maxHostsPerInventory) {
      throw new GalleyError(
        "INVENTORY_INVALID",
        `${origin ? where(origin) : raw.file}: the inventory has more than ${maxHostsPerInventory} hosts (at ${name})`,
        { hint: "split the fleet into several inventories, or narrow the host ranges" },
      );
    }
    host = { name, vars: {}, origins: {}, memberOf: new Set() };
    raw.hosts.set(name, host);
    if (port !== undefined) setVar(host, "ansible_port", port, origin ?? { file: raw.file });
  }
  if (group !== undefined && !host.memberOf.has(group)) {
    addGroup(raw, group).hosts.push(name);
    host.memberOf.add(group);
  }
  return host;
}

/** Makes `child` a child group of `parent`; a loop is an error naming both. */
export function addChild(raw: RawInventory, parent: string, child: string, origin: Origin): void {
  const p = addGroup(raw, parent);
  const c = addGroup(raw, child);
  if (p.children.includes(child)) return;
  if (parent === child || ancestors(raw, p).has(child)) {
    throw new GalleyError(
      "INVENTORY_INVALID",
      `${where(origin)}: group ${child} cannot be a child of ${parent}: ${parent} is already inside ${child} (a loop)`,
      { hint: `remove ${child} from the children of ${parent}, or ${parent} from those of ${child}` },
    );
  }
  p.children.push(child);
  c.parents.push(parent);
}

/** Sets a variable; on a group, ansible_group_priority sets its priority instead (as Ansible does). */
export function setVar(target: RawGroup | RawHost, key: string, value: unknown, origin: Origin): void {
  if ("priority" in target && key === "ansible_group_priority") {
    target.priority = pythonInt(value, `${where(origin)}: ansible_group_priority of ${target.name}`);
    return;
  }
  // vars are plain objects: `__proto__=…` would replace their prototype and vanish from the output
  if (reservedKeys.has(key)) {
    throw new GalleyError(
      "INVENTORY_INVALID",
      `${where(origin)}: "${key}" cannot be a variable name of ${target.name}: JavaScript objects reserve it`,
      { hint: "rename the variable" },
    );
  }
  target.vars[key] = value;
  target.origins[key] = origin;
}

/** Every group above `group` (not itself). */
export function ancestors(raw: RawInventory, group: RawGroup): Set<string> {
  const found = new Set<string>();
  const stack = [...group.parents];
  for (let name = stack.pop(); name !== undefined; name = stack.pop()) {
    if (found.has(name)) continue;
    found.add(name);
    stack.push(...(raw.groups.get(name)?.parents ?? []));
  }
  return found;
}

/**
 * Ansible's reconcile_inventory: every top group becomes a child of 'all', a host in no group
 * but 'all' goes to 'ungrouped', a host in another group leaves 'ungrouped'; then depths.
 */
export function reconcile(raw: RawInventory): void {
  for (const group of raw.groups.values()) {
    if (group.name !== "all" && group.parents.length === 0)
      addChild(raw, "all", group.name, { file: raw.file });
  }
  const ungrouped = raw.groups.get("ungrouped")!;
  for (const host of raw.hosts.values()) {
    const others = [...hostGroupNames(raw, host)].filter((g) => g !== "all" && g !== "ungrouped");
    if (host.memberOf.has("ungrouped") && others.length > 0) {
      ungrouped.hosts = ungrouped.hosts.filter((h) => h !== host.name);
      host.memberOf.delete("ungrouped");
    } else if (others.length === 0 && !host.memberOf.has("ungrouped")) {
      addHost(raw, host.name, "ungrouped");
    }
  }
  const visit = (group: RawGroup, depth: number) => {
    if (depth < group.depth) return;
    group.depth = depth;
    for (const child of group.children) visit(raw.groups.get(child)!, depth + 1);
  };
  visit(raw.groups.get("all")!, 0);
}

/** The names of every group a host is in, directly or through children. */
export function hostGroupNames(raw: RawInventory, host: RawHost): Set<string> {
  const names = new Set<string>();
  for (const direct of host.memberOf) {
    const group = raw.groups.get(direct)!;
    names.add(direct);
    for (const name of ancestors(raw, group)) names.add(name);
  }
  return names;
}

/** A host's groups in Ansible's merge order: by depth, then ansible_group_priority, then name. */
export function sortedHostGroups(raw: RawInventory, host: RawHost): RawGroup[] {
  const groups = [...hostGroupNames(raw, host)].map((name) => raw.groups.get(name)!);
  if (!groups.some((g) => g.name === "all")) groups.push(raw.groups.get("all")!);
  return groups.sort(
    (a, b) =>
      a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
}

// Python's int() of a value, as Group.set_priority does
function pythonInt(value: unknown, what: string): number {
  if (typeof value === "number" && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === "boolean") return value ? 1 : 0;
  if (typeof value === "string" && /^\s*[-+]?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  throw new GalleyError("INVENTORY_INVALID", `${what} must be a whole number, not ${JSON.stringify(value)}`, {
    hint: "write a number such as ansible_group_priority=10",
  });
}
