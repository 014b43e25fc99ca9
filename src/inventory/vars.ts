import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isPlainObject } from "../core/attributes.ts";
import { GalleyError } from "../core/errors.ts";
import { readYamlText } from "../core/yaml.ts";
import { type Origin, type RawGroup, type RawHost, type RawInventory, sortedHostGroups } from "./model.ts";
import { parseAnsibleYaml } from "./yaml11.ts";

/** One source of variables, merged over the ones before it: an inventory entry or a vars file. */
export interface VarLayer {
  vars: Record<string, unknown>;
  origins: Record<string, Origin>;
}

/** A host's variables merged in Ansible's order, and where each came from. */
export interface MergedVars {
  /** the host's groups in merge order, 'all' first */
  groups: string[];
  vars: Record<string, unknown>;
  origins: Record<string, Origin>;
  /** the non-ansible_ variables of group layers, and of host layers */
  attributes: { group: Record<string, unknown>; host: Record<string, unknown> };
}

const extensions = [".yml", ".yaml", ".json"];

/**
 * The variable files of one group or host beside the inventory, as Ansible's host_group_vars
 * plugin finds them: the first of `NAME` (a file, or a folder read recursively in name order),
 * `NAME.yml`, `NAME.yaml`, `NAME.json`.
 */
export async function varsFiles(dir: string, name: string): Promise<string[]> {
  // a name like /path/to/chroot is no file name (Ansible skips it too)
  if (name.startsWith("/")) return [];
  for (const extension of ["", ...extensions]) {
    const file = path.join(dir, name + extension);
    const stat = await fs.stat(file).catch(() => undefined);
    if (stat) return stat.isDirectory() ? folderFiles(file) : [file];
  }
  return [];
}

async function folderFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of (await fs.readdir(dir)).sort()) {
    // hidden files and editor backups are skipped
    if (entry.startsWith(".") || entry.endsWith("~")) continue;
    const file = path.join(dir, entry);
    const extension = path.extname(entry);
    const stat = await fs.stat(file);
    if (stat.isDirectory() && !extension) found.push(...(await folderFiles(file)));
    else if (stat.isFile() && (!extension || extensions.includes(extension))) found.push(file);
  }
  return found;
}

/** The layers of `group_vars/NAME` or `host_vars/NAME` beside the inventory file; empty files count for nothing. */
export async function varsLayers(inventoryFile: string, kind: "group_vars" | "host_vars", name: string) {
  const layers: VarLayer[] = [];
  for (const file of await varsFiles(path.join(path.dirname(inventoryFile), kind), name)) {
    const { value, lineOf } = parseAnsibleYaml(
      file,
      (await readYamlText(file, { code: "INVENTORY_INVALID" })) ?? "",
    );
    // Python's truthiness: an empty file, mapping or list adds nothing
    if (!value || (typeof value === "object" && Object.keys(value).length === 0)) continue;
    if (!isPlainObject(value)) {
      throw new GalleyError("INVENTORY_INVALID", `${file}: variables must be a mapping of names to values`, {
        hint: "write one name: value per line",
      });
    }
    const origins = Object.fromEntries(Object.keys(value).map((key) => [key, { file, line: lineOf([key]) }]));
    layers.push({ vars: value, origins });
  }
  return layers;
}

/** The group_vars/ and host_vars/ layers of every group and host of `raw`. */
export async function loadVarsDirs(raw: RawInventory) {
  const load = async (kind: "group_vars" | "host_vars", names: Iterable<string>) =>
    new Map(
      await Promise.all(
        [...names].map(async (name) => [name, await varsLayers(raw.file, kind, name)] as const),
      ),
    );
  return {
    groups: await load("group_vars", raw.groups.keys()),
    hosts: await load("host_vars", raw.hosts.keys()),
  };
}

/**
 * A host's variables in Ansible's order (each layer replaces whole top-level keys): the inventory's
 * group variables (all, then by depth, priority, name), then group_vars/ files in that order, then
 * the host's own variables, then host_vars/ files.
 */
export function mergeHostVars(
  raw: RawInventory,
  host: RawHost,
  dirs: { groups: Map<string, VarLayer[]>; hosts: Map<string, VarLayer[]> },
): MergedVars {
  const groups = sortedHostGroups(raw, host);
  const groupLayers = [...groups.map(inline), ...groups.flatMap((g) => dirs.groups.get(g.name) ?? [])];
  const hostLayers = [inline(host), ...(dirs.hosts.get(host.name) ?? [])];
  const merged = merge([...groupLayers, ...hostLayers]);
  return {
    groups: groups.map((g) => g.name),
    ...merged,
    attributes: { group: merge(groupLayers, true).vars, host: merge(hostLayers, true).vars },
  };
}

/** A group's own variables: the inventory's, then its group_vars/ files, as ansible-inventory --export shows them. */
export function groupVars(group: RawGroup, layers: VarLayer[]): Record<string, unknown> {
  const vars = merge([inline(group), ...layers]).vars;
  // the priority is no variable of its hosts, but it is shown as one
  return group.priority === 1 ? vars : { ...vars, ansible_group_priority: group.priority };
}

function inline(entry: RawGroup | RawHost): VarLayer {
  return { vars: entry.vars, origins: entry.origins };
}

function merge(layers: VarLayer[], attributesOnly = false): VarLayer {
  const result: VarLayer = { vars: {}, origins: {} };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.vars)) {
      if (attributesOnly && key.startsWith("ansible_")) continue;
      result.vars[key] = value;
      result.origins[key] = layer.origins[key] ?? { file: "?" };
    }
  }
  return result;
}
