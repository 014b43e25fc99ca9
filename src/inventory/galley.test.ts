import assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { localUser } from "./connection.ts";
import { parseGalleyInventory } from "./galley.ts";

const file = "/srv/fleet/inventory.yaml";

function host(text: string, name: string) {
  const found = parseGalleyInventory(file, text).hosts.find((h) => h.name === name);
  assert.ok(found, `host ${name}`);
  return found;
}

function fails(text: string, message: RegExp) {
  assert.throws(
    () => parseGalleyInventory(file, text),
    (e: GalleyError) => e.code === "INVENTORY_INVALID" && message.test(e.message) && !!e.hint,
    message.source,
  );
}

const example = `
connection:
  key: id_ed25519
  known_hosts: known_hosts
  host_key_checking: accept-new
  timeout: 3
attributes: { nginx: { port: 80, workers: 2 }, motd: hello }
groups:
  web:
    hosts: [web1, web2]
    children: [canary]
    connection: { become: true, user: deploy }
    attributes: { nginx: { port: 8080 } }
  canary:
    connection: { become_user: app, user: canary }
    attributes: { nginx: { workers: 1 } }
hosts:
  web1: { address: 10.147.0.2 }
  web2: { address: 10.147.0.3, port: 2222, groups: [db, canary], attributes: { role: primary }, user: root }
  db1:
    groups: [db]
    jump: admin@bastion:2200
  db2:
    jump: { address: 10.147.0.1, key: ~/.ssh/bastion }
`;

test("the documented example: groups, attributes kept apart by level, vars the merge of both", () => {
  const web2 = host(example, "web2");
  assert.deepEqual(web2.groups, ["all", "canary", "db", "web"]);
  assert.deepEqual(web2.attributes, {
    group: { nginx: { port: 8080, workers: 1 }, motd: "hello" },
    host: { role: "primary" },
  });
  assert.deepEqual(web2.vars, { nginx: { port: 8080, workers: 1 }, motd: "hello", role: "primary" });
  const inventory = parseGalleyInventory(file, example);
  assert.equal(inventory.format, "galley");
  assert.deepEqual(inventory.groups.find((g) => g.name === "all")?.children, ["ungrouped", "web", "db"]);
  assert.deepEqual(inventory.groups.find((g) => g.name === "ungrouped")?.hosts, ["db2"]);
});

test("connection settings: top level, then groups parents first, then the host's own keys", () => {
  const web1 = host(example, "web1").target;
  assert.deepEqual(web1, {
    name: "web1",
    address: "10.147.0.2",
    port: 22,
    user: "deploy",
    keyFile: "/srv/fleet/id_ed25519",
    become: true,
    becomeUser: "root",
    knownHostsFile: "/srv/fleet/known_hosts",
    hostKeyChecking: "accept-new",
    connectTimeoutMs: 3000,
    retries: 2,
  });
  const web2 = host(example, "web2").target;
  // canary (a child of web) overrides web; the host's own user overrides both
  assert.equal(web2.becomeUser, "app");
  assert.equal(web2.user, "root");
  assert.equal(web2.port, 2222);
});

test("a host without address uses its name; jump hosts as text or mapping", () => {
  const db1 = host(example, "db1").target;
  assert.equal(db1.address, "db1");
  assert.equal(db1.user, localUser());
  assert.deepEqual(db1.jump, {
    address: "bastion",
    port: 2200,
    user: "admin",
    keyFile: "/srv/fleet/id_ed25519",
    knownHostsFile: "/srv/fleet/known_hosts",
    hostKeyChecking: "accept-new",
  });
  const db2 = host(example, "db2").target;
  assert.equal(db2.jump?.keyFile, path.join(os.homedir(), ".ssh/bastion"));
  assert.equal(db2.jump?.address, "10.147.0.1");
});

test("without settings: ssh's defaults", () => {
  const target = host("hosts:\n  h1:\n", "h1").target;
  assert.deepEqual(target, {
    name: "h1",
    address: "h1",
    port: 22,
    user: localUser(),
    become: false,
    becomeUser: "root",
    knownHostsFile: path.join(os.homedir(), ".ssh/known_hosts"),
    hostKeyChecking: "strict",
    connectTimeoutMs: 10_000,
    retries: 2,
  });
});

test("attributes of groups at the same depth merge by group name", () => {
  const text = `
groups:
  b: { attributes: { x: b, deep: { from_b: 1 } } }
  a: { attributes: { x: a, deep: { from_a: 1 } } }
hosts:
  h: { groups: [b, a] }
`;
  assert.deepEqual(host(text, "h").attributes.group, { x: "b", deep: { from_a: 1, from_b: 1 } });
});

test("mistakes are INVENTORY_INVALID naming file and line", () => {
  fails(
    "hosts: {}\nconection: {}\n",
    /^\/srv\/fleet\/inventory\.yaml:2: \(top level\): unknown field "conection"/,
  );
  fails("hosts:\n  h1:\n    adress: 10.0.0.1\n", /:3: hosts\.h1: unknown field "adress"/);
  fails("hosts:\n  h1:\n    port: '22'\n", /:3: hosts\.h1\.port: /);
  fails("hosts:\n  h1:\n    attributes: [1]\n", /:3: hosts\.h1\.attributes: expected a mapping/);
  fails("hosts:\n  h1:\n    host_key_checking: no\n", /:3: hosts\.h1\.host_key_checking: /);
  fails(
    "groups:\n  web:\n    hosts: [web1, wbe2]\nhosts:\n  web1:\n",
    /:3: group web names host wbe2, which is not under hosts:/,
  );
  fails("groups:\n  web:\n    children: [canary]\nhosts: {}\n", /:3: group web names child group canary/);
  fails(
    "groups:\n  a: { children: [b] }\n  b: { children: [a] }\nhosts: {}\n",
    /:3: group a cannot be a child of b/,
  );
  fails("groups:\n  all: {}\nhosts: {}\n", /:2: group all is implicit/);
  fails("hosts:\n  h:\n    jump: 'a@b:c:d'\n", /jump of h: cannot read the jump host/);
});

test("state_dir: where Galley keeps its state on the host; it must be absolute", () => {
  const text = "hosts:\n  a: { state_dir: /srv/galley-state }\n  b: {}\n";
  assert.equal(host(text, "a").target.stateDir, "/srv/galley-state");
  assert.equal(host(text, "b").target.stateDir, undefined);
  fails("hosts:\n  a: { state_dir: state }\n", /state_dir of a must be an absolute path/);
});
