import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { loadInventory } from "../src/inventory/load.ts";
import type { Inventory } from "../src/inventory/types.ts";
import { tempDir } from "../src/resources/testing.ts";

/**
 * Galley reads Ansible inventories as ansible-core 2.14 does. Each fixture is compared with the
 * golden output of the real `ansible-inventory` committed beside it, and, where ansible-inventory
 * is installed, with what it prints now. Regenerate the goldens from Ansible (never by hand):
 *   GALLEY_UPDATE_GOLDEN=1 node --test test/inventory-ansible.test.ts
 */

const run = promisify(execFile);
const fixtures = path.join(import.meta.dirname, "fixtures", "inventory");
const cases = [
  "ini-fleet/hosts.ini",
  "yaml-nested/inventory.yml",
  "ini-noext/hosts",
  "json-inventory/inventory.json",
];

/** What both sides are compared in: every host's merged variables, every group's hosts, children and own variables. */
interface Normalised {
  hosts: Record<string, Record<string, unknown>>;
  groups: Record<string, { hosts: string[]; children: string[]; vars: Record<string, unknown> }>;
}

function fromGalley(inventory: Inventory): Normalised {
  const groups: Normalised["groups"] = {};
  for (const g of inventory.groups) {
    // ansible-inventory never lists the hosts of 'all', and leaves out a group with nothing in it
    const hosts = g.name === "all" ? [] : g.hosts;
    if (hosts.length || g.children.length || Object.keys(g.vars).length) {
      groups[g.name] = { hosts, children: g.children, vars: g.vars };
    }
  }
  return {
    hosts: Object.fromEntries(inventory.hosts.map((h) => [h.name, h.vars])),
    groups: sortKeys(groups),
  };
}

type AnsibleList = Record<
  string,
  { hosts?: string[]; children?: string[]; vars?: Record<string, unknown> }
> & {
  _meta: { hostvars: Record<string, Record<string, unknown>> };
};

function fromAnsible(list: AnsibleList, exported: AnsibleList): Normalised {
  const groups: Normalised["groups"] = {};
  const names = new Set([...Object.keys(list), ...Object.keys(exported)].filter((n) => n !== "_meta"));
  const hosts: Normalised["hosts"] = {};
  for (const name of names) {
    const group = {
      hosts: list[name]?.hosts ?? [],
      children: list[name]?.children ?? [],
      vars: exported[name]?.vars ?? {},
    };
    groups[name] = group;
    // a host without variables is missing from hostvars
    for (const host of group.hosts) hosts[host] = list._meta.hostvars[host] ?? {};
  }
  return { hosts: sortKeys(hosts), groups: sortKeys(groups) };
}

function sortKeys<T extends Record<string, unknown>>(record: T): T {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as T;
}

/** Writes a golden file, formatted as the repository's formatter wants it (npm run lint checks it). */
async function writeGolden(file: string, value: Normalised): Promise<void> {
  await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
  const biome = path.join(import.meta.dirname, "..", "node_modules", ".bin", "biome");
  await run(biome, ["format", "--write", file]);
}

/** ansible-inventory's view of `file`, or undefined when Ansible is not installed. */
async function ansibleInventory(file: string): Promise<Normalised | undefined> {
  const home = await tempDir("galley-ansible-");
  const env = {
    ...process.env,
    ANSIBLE_INVENTORY_UNPARSED_FAILED: "1",
    ANSIBLE_HOME: home,
    ANSIBLE_LOCAL_TEMP: home,
    ANSIBLE_NOCOLOR: "1",
  };
  const list = async (...extra: string[]) => {
    const { stdout } = await run("ansible-inventory", ["-i", file, "--list", ...extra], { cwd: home, env });
    return JSON.parse(stdout) as AnsibleList;
  };
  try {
    const [plain, exported] = await Promise.all([list(), list("--export")]);
    return fromAnsible(plain, exported);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

for (const fixture of cases) {
  test(`reads ${fixture} as ansible-inventory does`, async (t) => {
    const file = path.join(fixtures, fixture);
    const golden = path.join(path.dirname(file), "ansible-inventory.json");
    const galley = fromGalley(await loadInventory(file));
    const ansible = await ansibleInventory(file);
    if (ansible) {
      if (process.env.GALLEY_UPDATE_GOLDEN) await writeGolden(golden, ansible);
      assert.deepEqual(galley, ansible, "Galley and ansible-inventory disagree");
    } else {
      t.diagnostic("ansible-inventory is not installed: compared with the committed golden only");
    }
    const expected = JSON.parse(await fs.readFile(golden, "utf8")) as Normalised;
    if (ansible)
      assert.deepEqual(ansible, expected, "the golden is stale: regenerate it (see the top of this file)");
    assert.deepEqual(galley, expected);
  });
}
