import type { FleetState } from "./state.ts";

/**
 * The fleet as a Galley inventory: root with the fleet's key, strict host key checking against
 * the fleet's known_hosts; paths relative to the inventory file, so the folder can move.
 */
export function inventoryText(state: FleetState): string {
  const hosts = Object.values(state.hosts).sort((a, b) => a.index - b.index);
  const lines = [
    "# written by galley hosts; galley push -i .galley/hosts/inventory.yaml uses it as is",
    "connection:",
    "  user: root",
    "  key: id_ed25519",
    "  known_hosts: known_hosts",
    "  host_key_checking: strict",
    "groups:",
    `  container: { hosts: [${hosts.map((host) => host.name).join(", ")}] }`,
  ];
  if (hosts.length === 0) lines.push("hosts: {}");
  else lines.push("hosts:", ...hosts.map((host) => `  ${host.name}: { address: ${host.address} }`));
  return `${lines.join("\n")}\n`;
}
