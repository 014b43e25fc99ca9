import * as path from "node:path";
import * as v from "valibot";
import { parseYamlFile } from "../cookbooks/cookbook.ts";
import { type LineLookup, yamlLines } from "../cookbooks/yaml-lines.ts";
import { deepMerge, isPlainObject } from "../core/attributes.ts";
import { GalleyError } from "../core/errors.ts";
import { buildTarget, type ConnectionSettings } from "./connection.ts";
import {
  addChild,
  addGroup,
  addHost,
  createRaw,
  type Origin,
  type RawInventory,
  reconcile,
  setVar,
  sortedHostGroups,
} from "./model.ts";
import type { Inventory, InventoryHost } from "./types.ts";

const text = v.pipe(v.string(), v.minLength(1));
const port = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535));
const connectionEntries = {
  user: v.optional(text),
  port: v.optional(port),
  key: v.optional(text),
  known_hosts: v.optional(text),
  host_key_checking: v.optional(v.picklist(["strict", "accept-new"])),
  become: v.optional(v.boolean()),
  become_user: v.optional(text),
  state_dir: v.optional(text),
  jump: v.optional(
    v.union(
      [
        text,
        v.strictObject({
          address: text,
          port: v.optional(port),
          user: v.optional(text),
          key: v.optional(text),
        }),
      ],
      "a jump host is user@host:port, or a mapping of address, port, user and key",
    ),
  ),
  timeout: v.optional(v.pipe(v.number(), v.minValue(0), v.maxValue(86_400))),
  retries: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(100))),
};
// valibot's record takes a list too: a list where a mapping belongs is a mistake
const mapping = <T extends v.GenericSchema>(values: T) =>
  v.pipe(
    v.custom<Record<string, unknown>>(isPlainObject, "expected a mapping (name: value)"),
    v.record(v.string(), values),
  );
const attributes = v.optional(v.nullable(mapping(v.unknown())));
const names = v.optional(v.nullable(v.array(text)));

/** Galley's inventory file: connection defaults, attributes, groups and hosts (see docs/inventory.md). */
export const galleyInventorySchema = v.strictObject({
  connection: v.optional(v.nullable(v.strictObject(connectionEntries))),
  attributes,
  groups: v.optional(
    v.nullable(
      mapping(
        v.nullable(
          v.strictObject({
            hosts: names,
            children: names,
            connection: v.optional(v.nullable(v.strictObject(connectionEntries))),
            attributes,
          }),
        ),
      ),
    ),
  ),
  hosts: mapping(
    v.nullable(
      v.strictObject({ address: v.optional(text), ...connectionEntries, groups: names, attributes }),
    ),
  ),
});

type GalleyInventory = v.InferOutput<typeof galleyInventorySchema>;
type Fail = (keys: string[], message: string, hint: string) => never;

/**
 * Reads Galley's own inventory format. Connection settings merge key by key: top-level
 * `connection`, then each group's (parents first), then the host's own keys. Attributes merge deeply
 * in the same order; group attributes and the host's are kept apart.
 */
export function parseGalleyInventory(file: string, text: string): Inventory {
  const data = parseYamlFile(
    file,
    text,
    galleyInventorySchema,
    "INVENTORY_INVALID",
    "fix that field; the format is in docs/inventory.md",
  );
  const lineOf = yamlLines(text);
  const fail: Fail = (keys, message, hint) => {
    const line = lineOf(keys);
    throw new GalleyError("INVENTORY_INVALID", `${file}${line ? `:${line}` : ""}: ${message}`, { hint });
  };
  const raw = buildGroups(file, data, lineOf, fail);
  const hosts = Object.keys(data.hosts).map((name) => resolveHost(raw, data, name, lineOf));
  const groups = [...raw.groups.values()].map((g) => ({
    name: g.name,
    hosts: [...g.hosts],
    children: [...g.children],
    vars: { ...g.vars },
  }));
  return { file, format: "galley", hosts, groups };
}

// hosts, groups, memberships and attributes, in the shape every format shares
function buildGroups(file: string, data: GalleyInventory, lineOf: LineLookup, fail: Fail): RawInventory {
  const origin = (...keys: string[]): Origin => ({ file, line: lineOf(keys) });
  const implicit = (name: string) => name === "all" || name === "ungrouped";
  const raw = createRaw(file);
  const groups = Object.entries(data.groups ?? {});
  for (const [name, body] of groups) {
    if (implicit(name)) {
      fail(["groups", name], `group ${name} is implicit`, "put settings for every host at the top level");
    }
    const group = addGroup(raw, name);
    for (const [key, value] of Object.entries(body?.attributes ?? {})) {
      setVar(group, key, value, origin("groups", name, "attributes", key));
    }
  }
  for (const [key, value] of Object.entries(data.attributes ?? {})) {
    setVar(raw.groups.get("all")!, key, value, origin("attributes", key));
  }
  for (const [name, body] of Object.entries(data.hosts)) {
    const host = addHost(raw, name);
    for (const [key, value] of Object.entries(body?.attributes ?? {})) {
      setVar(host, key, value, origin("hosts", name, "attributes", key));
    }
  }
  for (const [name, body] of groups) {
    for (const [i, member] of (body?.hosts ?? []).entries()) {
      if (!raw.hosts.has(member)) {
        const message = `group ${name} names host ${member}, which is not under hosts:`;
        fail(["groups", name, "hosts", String(i)], message, `add ${member} under hosts:, or fix the name`);
      }
      addHost(raw, member, name);
    }
    for (const [i, child] of (body?.children ?? []).entries()) {
      if (!raw.groups.has(child) || implicit(child)) {
        const message = `group ${name} names child group ${child}, which is not under groups:`;
        fail(["groups", name, "children", String(i)], message, `add ${child} under groups:, or fix the name`);
      }
      addChild(raw, name, child, origin("groups", name, "children", String(i)));
    }
  }
  for (const [name, body] of Object.entries(data.hosts)) {
    // naming a group makes it, as in Ansible
    for (const [i, group] of (body?.groups ?? []).entries()) {
      if (implicit(group)) {
        fail(
          ["hosts", name, "groups", String(i)],
          `host ${name}: group ${group} is implicit`,
          `remove ${group}`,
        );
      }
      addHost(raw, name, group);
    }
  }
  reconcile(raw);
  return raw;
}

function resolveHost(
  raw: RawInventory,
  data: GalleyInventory,
  name: string,
  lineOf: LineLookup,
): InventoryHost {
  const body = data.hosts[name];
  const sorted = sortedHostGroups(raw, raw.hosts.get(name)!);
  const group = sorted.reduce((merged, g) => deepMerge(merged, g.vars), {} as Record<string, unknown>);
  const host = { ...(body?.attributes ?? {}) };
  const { groups: _groups, attributes: _attributes, ...own } = body ?? {};
  const settings: ConnectionSettings = Object.assign(
    {},
    data.connection,
    ...sorted.map((g) => data.groups?.[g.name]?.connection ?? {}),
    own,
  );
  const where = `${raw.file}:${lineOf(["hosts", name]) ?? "?"}`;
  return {
    name,
    groups: sorted.map((g) => g.name).sort(),
    vars: deepMerge(group, host),
    attributes: { group, host },
    target: buildTarget(name, settings, path.dirname(raw.file), where),
  };
}
