import * as fs from "node:fs/promises";
import * as path from "node:path";
import { isPlainObject } from "../core/attributes.ts";
import { GalleyError } from "../core/errors.ts";
import { decodeYamlText, yamlLimits } from "../core/yaml.ts";
import { parseAnsibleIni } from "./ansible-ini.ts";
import { ansibleTarget } from "./ansible-target.ts";
import { readAnsibleYaml } from "./ansible-yaml.ts";
import { parseGalleyInventory } from "./galley.ts";
import { type RawInventory, reconcile } from "./model.ts";
import type { Inventory } from "./types.ts";
import { groupVars, loadVarsDirs, mergeHostVars } from "./vars.ts";
import { parseAnsibleYaml } from "./yaml11.ts";

/**
 * Reads an inventory file: Galley's YAML (a top-level `hosts:` mapping and no `all:`), Ansible's
 * YAML (.yaml, .yml, .json, or a file without extension holding a mapping) or Ansible's INI (any
 * other file). Ansible inventories also read group_vars/ and host_vars/ beside the file.
 *
 * @example const inventory = await loadInventory("inventory.yaml")
 */
export async function loadInventory(file: string): Promise<Inventory> {
  const text = await readInventory(file);
  const extension = path.extname(file).toLowerCase();
  if (text.startsWith("#!")) {
    throw new GalleyError(
      "INVENTORY_INVALID",
      `${file} is a dynamic inventory script: Galley reads inventory files only`,
      {
        hint: "save what the script prints as a file (ansible-inventory -i SCRIPT --list -y > inventory.yaml) and use that",
      },
    );
  }
  if ([".yaml", ".yml", ".json"].includes(extension)) {
    if (extension !== ".json" && isGalleyFormat(text)) return parseGalleyInventory(file, text);
    const { value, lineOf } = parseAnsibleYaml(file, text);
    return assembleAnsible(readAnsibleYaml(file, value, lineOf), "ansible-yaml");
  }
  // like Ansible, a file without extension is YAML when it reads as a mapping
  if (extension === "") {
    const yaml = tryYaml(file, text);
    if (isPlainObject(yaml?.value))
      return assembleAnsible(readAnsibleYaml(file, yaml.value, yaml.lineOf), "ansible-yaml");
  }
  return assembleAnsible(parseAnsibleIni(file, text), "ansible-ini");
}

/** Galley's format: a top-level `hosts:` mapping whose values are mappings or empty, and no `all:`. */
export function isGalleyFormat(text: string): boolean {
  const yaml = tryYaml("", text);
  const value = yaml?.value;
  if (!isPlainObject(value) || "all" in value || !isPlainObject(value.hosts)) return false;
  return Object.values(value.hosts).every((host) => host === null || isPlainObject(host));
}

function tryYaml(file: string, text: string) {
  try {
    return parseAnsibleYaml(file, text);
  } catch {
    return undefined;
  }
}

async function readInventory(file: string): Promise<string> {
  try {
    const stat = await fs.stat(file);
    if (stat.isFile() && stat.size > yamlLimits.maxBytes) {
      throw new GalleyError(
        "INVENTORY_INVALID",
        `inventory ${file} is larger than ${yamlLimits.maxBytes} bytes`,
        {
          hint: "split it into several inventories",
        },
      );
    }
    return decodeYamlText(file, await fs.readFile(file), { code: "INVENTORY_INVALID" });
  } catch (error) {
    if (error instanceof GalleyError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new GalleyError(
      "INVENTORY_INVALID",
      code === "ENOENT"
        ? `inventory ${file} does not exist`
        : code === "EISDIR"
          ? `inventory ${file} is a folder: Galley reads one inventory file`
          : `cannot read inventory ${file}: ${code ?? String(error)}`,
      { hint: "pass the inventory file with -i FILE" },
    );
  }
}

// the host, group and variable model of ansible-inventory --list, plus Galley's attributes and targets
async function assembleAnsible(
  raw: RawInventory,
  format: "ansible-ini" | "ansible-yaml",
): Promise<Inventory> {
  reconcile(raw);
  const dirs = await loadVarsDirs(raw);
  const baseDir = path.dirname(raw.file);
  const hosts = [...raw.hosts.values()].map((host) => {
    const merged = mergeHostVars(raw, host, dirs);
    return {
      name: host.name,
      groups: [...merged.groups].sort(),
      vars: merged.vars,
      attributes: merged.attributes,
      target: ansibleTarget(host.name, merged.vars, merged.origins, baseDir),
    };
  });
  const groups = [...raw.groups.values()].map((group) => ({
    name: group.name,
    hosts: [...group.hosts],
    children: [...group.children],
    vars: groupVars(group, dirs.groups.get(group.name) ?? []),
  }));
  return { file: raw.file, format, hosts, groups };
}
