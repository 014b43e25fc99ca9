import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { localUser } from "../inventory/connection.ts";
import { tempDir } from "../resources/testing.ts";
import { describe, graph, inventoryJson, inventoryView } from "./inventory.ts";

/** What a command line would show: the view, then its --json, text or --graph form (no stdout capture). */
async function show(values: Partial<Parameters<typeof inventoryView>[0]>, positionals: string[] = []) {
  const view = await inventoryView({ json: false, graph: false, ...values }, positionals);
  return { view, json: inventoryJson(view), text: describe(view), graph: graph(view) };
}

async function fails(values: Partial<Parameters<typeof inventoryView>[0]>, positionals: string[] = []) {
  try {
    await show(values, positionals);
  } catch (error) {
    if (error instanceof GalleyError) return error;
    throw error;
  }
  assert.fail("expected an error");
}

async function inventoryFile(name: string, text: string): Promise<string> {
  const file = path.join(await tempDir("galley-inventory-cli-"), name);
  await fs.writeFile(file, text);
  return file;
}

const galley = `
connection: { key: id_ed25519, become: true }
attributes: { motd: hello }
groups:
  web: { hosts: [web1, web2], attributes: { port: 8080 } }
hosts:
  web1: { address: 10.147.0.2, jump: admin@10.147.0.1 }
  web2: { address: 10.147.0.3, port: 2222, attributes: { role: primary } }
  db1: {}
`;

test("--json: hosts with groups, vars, attributes and connection; groups with hosts, children, vars", async () => {
  const file = await inventoryFile("inventory.yaml", galley);
  // through JSON, as --json prints it
  const out = JSON.parse(JSON.stringify((await show({ inventory: file })).json));
  assert.equal(out.format, "galley");
  assert.deepEqual(Object.keys(out.hosts), ["web1", "web2", "db1"]);
  assert.deepEqual(out.hosts.web2, {
    groups: ["all", "web"],
    vars: { motd: "hello", port: 8080, role: "primary" },
    attributes: { group: { motd: "hello", port: 8080 }, host: { role: "primary" } },
    connection: {
      address: "10.147.0.3",
      port: 2222,
      user: localUser(),
      keyFile: path.join(path.dirname(file), "id_ed25519"),
      become: true,
      becomeUser: "root",
      knownHostsFile: out.hosts.web2.connection.knownHostsFile,
      hostKeyChecking: "strict",
      jump: null,
      connectTimeoutMs: 10_000,
      retries: 2,
    },
  });
  assert.equal(out.hosts.web1.connection.jump.address, "10.147.0.1");
  assert.deepEqual(out.groups.web, { hosts: ["web1", "web2"], children: [], vars: { port: 8080 } });
  assert.deepEqual(out.groups.ungrouped.hosts, ["db1"]);
});

test("--limit keeps the selected hosts and the groups that hold them", async () => {
  const file = await inventoryFile("inventory.yaml", galley);
  const out = JSON.parse(JSON.stringify((await show({ inventory: file, limit: "web:!web1" })).json));
  assert.deepEqual(Object.keys(out.hosts), ["web2"]);
  assert.deepEqual(Object.keys(out.groups), ["all", "web"]);
  assert.deepEqual(out.groups.all.children, ["web"]);
  const none = await fails({ inventory: file, limit: "nosuch" });
  assert.equal(none.code, "INVENTORY_INVALID");
  assert.match(none.hint ?? "", /groups: all, ungrouped, web/);
});

test("text: the group tree, each host's connection and own attributes once", async () => {
  const file = await inventoryFile("inventory.yaml", galley);
  const stdout = (await show({ inventory: file })).text;
  const lines = stdout.split("\n");
  assert.match(lines[0]!, /inventory\.yaml \(galley\): 3 hosts, 3 groups/);
  assert.ok(lines.includes("  @web"), stdout);
  assert.ok(lines.includes("    port: 8080"), stdout);
  assert.ok(
    lines.some((l) => /^ {4}- web2 {2}\S+@10\.147\.0\.3:2222, become root, key \//.test(l)),
    stdout,
  );
  assert.ok(lines.includes("        role: primary"), stdout);
  assert.ok(
    lines.some((l) => /- web1 .*via admin@10\.147\.0\.1:22/.test(l)),
    stdout,
  );
});

test("--graph prints the tree as ansible-inventory --graph does", async () => {
  const file = await inventoryFile("hosts", "lonely\n[web]\nw[1:2]\n[prod:children]\nweb\n[empty]\n");
  const stdout = (await show({ inventory: file })).graph;
  // the output of ansible-inventory -i hosts --graph (ansible-core 2.14)
  assert.equal(
    stdout,
    [
      "@all:",
      "  |--@ungrouped:",
      "  |  |--lonely",
      "  |--@prod:",
      "  |  |--@web:",
      "  |  |  |--w1",
      "  |  |  |--w2",
      "  |--@empty:",
      "",
    ].join("\n"),
  );
});

test("usage errors", async () => {
  assert.equal((await fails({})).code, "USAGE");
  assert.equal((await fails({ inventory: "x" }, ["extra"])).code, "USAGE");
  assert.equal((await fails({ inventory: "/nonexistent/inventory.yaml" })).code, "INVENTORY_INVALID");
});
