import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "yaml";
import { inventoryText } from "./inventory.ts";
import type { FleetState, HostRecord } from "./state.ts";

function host(name: string, index: number): HostRecord {
  return {
    name,
    index,
    address: `10.201.7.${index + 1}`,
    init: "sysv",
    image: "debian-bookworm",
    netns: `glyabcdef-${name}`,
    veth: `glyabcdefv${index}`,
    layers: [],
    repo: "/repo",
    status: "running",
    cut: false,
    createdAt: "2025-01-01T00:00:00.000Z",
  };
}

function state(hosts: HostRecord[]): FleetState {
  const record = Object.fromEntries(hosts.map((h) => [h.name, h]));
  return {
    version: 1,
    id: "abcdef",
    bridge: "glyabcdef",
    subnet: "10.201.7.0/24",
    gateway: "10.201.7.1",
    hosts: record,
  };
}

test("the inventory has exactly the documented shape, hosts by index", () => {
  const text = inventoryText(state([host("host2", 2), host("host1", 1)]));
  assert.equal(
    text,
    [
      "# written by galley hosts; galley push -i .galley/hosts/inventory.yaml uses it as is",
      "connection:",
      "  user: root",
      "  key: id_ed25519",
      "  known_hosts: known_hosts",
      "  host_key_checking: strict",
      "groups:",
      "  container: { hosts: [host1, host2] }",
      "hosts:",
      "  host1: { address: 10.201.7.2 }",
      "  host2: { address: 10.201.7.3 }",
      "",
    ].join("\n"),
  );
  assert.deepEqual(parse(text).hosts, { host1: { address: "10.201.7.2" }, host2: { address: "10.201.7.3" } });
});

test("an empty fleet is still valid YAML with no hosts", () => {
  const data = parse(inventoryText(state([])));
  assert.deepEqual(data.groups, { container: { hosts: [] } });
  assert.deepEqual(data.hosts, {});
});
