import type { LineLookup } from "../cookbooks/yaml-lines.ts";
import { isPlainObject } from "../core/attributes.ts";
import { GalleyError } from "../core/errors.ts";
import { addChild, addGroup, addHost, createRaw, type RawInventory, setVar } from "./model.ts";
import { expandHostPattern } from "./ranges.ts";

const sections = ["vars", "children", "hosts"];

// a top-level hosts: that is not Galley's format (whose hosts are mappings) reads as a group named "hosts"
function hint(path: string[], hint: string): string {
  return path.length === 1 && path[0] === "hosts"
    ? "in Galley's format, hosts: maps each host name to a mapping of its settings: web1: { address: 10.0.0.1 }"
    : hint;
}

/**
 * Reads an Ansible YAML inventory as ansible-core 2.14's yaml plugin does: top-level keys are
 * groups, each with `hosts` (patterns with ranges, each with its variables), `children` (groups,
 * nested the same way) and `vars`. Where Ansible only warns (an unknown key, a group that is not a
 * mapping), Galley stops: such a file does not say what its author meant.
 */
export function readAnsibleYaml(file: string, value: unknown, lineOf: LineLookup): RawInventory {
  const fail = (path: string[], message: string, hint: string): never => {
    const line = lineOf(path);
    throw new GalleyError("INVENTORY_INVALID", `${file}${line ? `:${line}` : ""}: ${message}`, { hint });
  };
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    fail(
      [],
      "an Ansible YAML inventory must be a mapping of groups",
      "start with all: { hosts: …, children: … }",
    );
  }
  const data = value as Record<string, unknown>;
  if (data.plugin) {
    fail(
      ["plugin"],
      "inventory plugins (plugin: …) are not supported",
      "list the hosts in a static inventory file",
    );
  }
  const raw = createRaw(file);

  const parseGroup = (name: string, body: unknown, path: string[]): void => {
    if (body !== null && !isPlainObject(body)) {
      fail(
        path,
        `group ${name} must be a mapping (hosts, children, vars) or empty`,
        hint(path, "indent its hosts: under it"),
      );
    }
    const group = addGroup(raw, name);
    for (const [key, section] of Object.entries((body ?? {}) as Record<string, unknown>)) {
      const at = [...path, key];
      if (!sections.includes(key)) {
        fail(
          at,
          `unknown key "${key}" in group ${name}`,
          hint(path, "a group has only hosts, children and vars"),
        );
      }
      // a single name may stand for a mapping holding just it
      const entries = typeof section === "string" ? { [section]: null } : section;
      if (entries === null) continue;
      if (!isPlainObject(entries)) {
        fail(
          at,
          `${key} of group ${name} must be a mapping, not ${Array.isArray(entries) ? "a list" : JSON.stringify(entries)}`,
          `write each name followed by a colon: ${key}: { name: … }`,
        );
      }
      for (const [entry, entryValue] of Object.entries(entries as Record<string, unknown>)) {
        const origin = { file, line: lineOf([...at, entry]) };
        if (key === "vars") setVar(group, entry, entryValue, origin);
        else if (key === "children") {
          parseGroup(entry, entryValue, [...at, entry]);
          addChild(raw, name, entry, origin);
        } else {
          if (entryValue !== null && !isPlainObject(entryValue)) {
            fail(
              [...at, entry],
              `host ${entry} must have a mapping of variables or nothing`,
              "write host: { var: value }",
            );
          }
          const { names, port } = expandHostPattern(entry, `${file}:${origin.line ?? "?"}`);
          for (const hostName of names) {
            const host = addHost(raw, hostName, name, port, origin);
            for (const [k, v] of Object.entries((entryValue ?? {}) as Record<string, unknown>)) {
              setVar(host, k, v, { file, line: lineOf([...at, entry, k]) });
            }
          }
        }
      }
    }
  };
  for (const [name, body] of Object.entries(data)) parseGroup(name, body, [name]);
  return raw;
}
