import type { SshTarget } from "../hosts/target.ts";

/** One host of an inventory: its groups, variables, Galley attributes and how to reach it. */
export interface InventoryHost {
  name: string;
  /** every group the host is in, directly or through children, 'all' included, sorted */
  groups: string[];
  /** the host's variables after Ansible's merge order (all, then groups by depth, parents first, same depth by ansible_group_priority then name; then host vars) */
  vars: Record<string, unknown>;
  /** Galley attributes for this host: group attributes (layer level) and host attributes (instance level) kept apart so the runner can put them at their precedence levels */
  attributes: { group: Record<string, unknown>; host: Record<string, unknown> };
  target: SshTarget;
}

/** One group: its direct hosts, its child groups and its own variables. */
export interface InventoryGroup {
  name: string;
  hosts: string[];
  children: string[];
  vars: Record<string, unknown>;
}

/** A parsed inventory file, in any of the formats Galley reads. */
export interface Inventory {
  file: string;
  format: "galley" | "ansible-ini" | "ansible-yaml";
  hosts: InventoryHost[];
  groups: InventoryGroup[];
}
