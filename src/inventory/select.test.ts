import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import { loadInventory } from "./load.ts";
import { globRegExp, selectHosts, splitHostPattern } from "./select.ts";

const ini = `
lonely
[web]
web[1:4]
[canary]
web1
[db]
db[1:2]
[prod:children]
web
db
[backup]
db2
`;

async function inventory() {
  const file = path.join(await tempDir("galley-select-"), "hosts.ini");
  await fs.writeFile(file, ini);
  return loadInventory(file);
}

// expected selections checked against `ansible -i hosts.ini PATTERN --list-hosts` (ansible-core 2.14)
const cases: [string | undefined, string[]][] = [
  // nearest groups first: all's children (ungrouped, canary, prod, backup), then theirs
  [undefined, ["lonely", "web1", "db2", "web2", "web3", "web4", "db1"]],
  ["all", ["lonely", "web1", "db2", "web2", "web3", "web4", "db1"]],
  ["*", ["lonely", "web1", "db2", "web2", "web3", "web4", "db1"]],
  ["web", ["web1", "web2", "web3", "web4"]],
  ["web:db", ["web1", "web2", "web3", "web4", "db1", "db2"]],
  ["db,canary", ["db1", "db2", "web1"]],
  ["prod:&canary", ["web1"]],
  ["prod:!web", ["db1", "db2"]],
  ["!prod", ["lonely"]],
  ["web[2-3]*:backup", ["web2", "web3", "db2"]],
  ["~web[13]", ["web1", "web3"]],
  ["web[0]", ["web1"]],
  ["web[-1]", ["web4"]],
  ["web[1:2]", ["web2", "web3"]],
  ["web[2:]", ["web3", "web4"]],
  ["db2:web1", ["db2", "web1"]],
];

test("host patterns select as Ansible's do", async () => {
  const inv = await inventory();
  for (const [pattern, names] of cases) {
    assert.deepEqual(
      selectHosts(inv, pattern).map((h) => h.name),
      names,
      String(pattern),
    );
  }
});

test("a part that matches nothing, or a pattern that selects nothing, is an error listing the groups", async () => {
  const inv = await inventory();
  for (const [pattern, message] of [
    ["wbe", /--limit wbe: wbe matches no group or host/],
    ["web:dbb", /dbb matches no group or host/],
    ["web:&db", /--limit web:&db selects no host/],
    ["~web(", /invalid regular expression/],
    ["web[9]", /no host at index 9/],
  ] as const) {
    assert.throws(
      () => selectHosts(inv, pattern),
      (e: GalleyError) =>
        e.code === "INVENTORY_INVALID" &&
        message.test(e.message) &&
        /groups: all, ungrouped, web/.test(e.hint ?? ""),
      pattern,
    );
  }
});

test("patterns split at commas, else at colons outside ranges; an address stays whole", () => {
  assert.deepEqual(splitHostPattern("web:&db:!web[1:2]"), ["web", "&db", "!web[1:2]"]);
  assert.deepEqual(splitHostPattern("a:b, c"), ["a:b", "c"]);
  assert.deepEqual(splitHostPattern("10.0.0.1:22"), ["10.0.0.1:22"]);
  assert.deepEqual(splitHostPattern("fe80::1"), ["fe80::1"]);
});

test("globs are fnmatch's: *, ?, [seq], [!seq], the whole name", () => {
  assert.ok(globRegExp("web?").test("web1"));
  assert.ok(!globRegExp("web?").test("web10"));
  assert.ok(globRegExp("db[!1]").test("db2"));
  assert.ok(globRegExp("a.b").test("a.b") && !globRegExp("a.b").test("axb"));
});
