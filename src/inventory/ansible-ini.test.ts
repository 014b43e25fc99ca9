import assert from "node:assert/strict";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { parseAnsibleIni } from "./ansible-ini.ts";
import { reconcile } from "./model.ts";

function parse(text: string) {
  const raw = parseAnsibleIni("hosts.ini", text);
  reconcile(raw);
  return raw;
}

function fails(text: string, message: RegExp) {
  assert.throws(
    () => parse(text),
    (e: GalleyError) => e.code === "INVENTORY_INVALID" && message.test(e.message) && !!e.hint,
  );
}

test("groups may be used in [x:children] before they are declared", () => {
  const raw = parse("[prod:children]\nweb\ndb\n[db]\ndb1\n[web:children]\ncanary\n[canary]\nw1\n");
  assert.deepEqual(raw.groups.get("prod")?.children, ["db", "web"]);
  assert.deepEqual(raw.groups.get("web")?.children, ["canary"]);
  assert.deepEqual(raw.groups.get("all")?.children, ["ungrouped", "prod"]);
  assert.equal(raw.groups.get("canary")?.depth, 3);
});

test("host lines: ranges, a port for every expanded host, Python literal values, the last value wins", () => {
  const raw = parse("[web]\nw[1:2]:2222 n=1 s='a b' l=[1]\n[db]\nw1 n=2\n");
  assert.deepEqual(raw.hosts.get("w1")?.vars, { ansible_port: 2222, n: 2, s: "a b", l: [1] });
  assert.deepEqual(raw.hosts.get("w2")?.vars, { ansible_port: 2222, n: 1, s: "a b", l: [1] });
  assert.deepEqual([...(raw.hosts.get("w1")?.memberOf ?? [])], ["web", "db"]);
});

test("[x:vars] values are Python literals too (ansible-core 2.14), and the priority is no variable", () => {
  const raw = parse(
    "[g]\nh\n[g:vars]\nport = 80\nflag=True\ntext = hello # kept\nansible_group_priority=7\n",
  );
  assert.deepEqual(raw.groups.get("g")?.vars, { port: 80, flag: true, text: "hello # kept" });
  assert.equal(raw.groups.get("g")?.priority, 7);
  assert.deepEqual(raw.groups.get("g")?.origins.port, { file: "hosts.ini", line: 4 });
});

test("a host listed before any section is ungrouped until a group lists it", () => {
  const raw = parse("a\nb\n[g]\nb\n");
  assert.deepEqual(raw.groups.get("ungrouped")?.hosts, ["a"]);
  assert.deepEqual(raw.groups.get("g")?.hosts, ["b"]);
});

test("errors name the file and line", () => {
  fails("[g:vars]\nx=1\n", /^hosts\.ini:1: \[g:vars\] is for a group that is never declared/);
  fails(
    "[p:children]\nmissing\n",
    /^hosts\.ini:2: \[p:children\] names group missing, which is never declared/,
  );
  fails("[g:other]\n", /^hosts\.ini:1: section \[g:other\] has an unknown type/);
  fails("\n[bad group]\n", /^hosts\.ini:2: invalid section/);
  fails("[g]\nh novalue\n", /^hosts\.ini:2: expected key=value/);
  fails("[g]\nh x='open\n", /^hosts\.ini:2: cannot split the host line/);
  fails("[g]\nh:\n", /^hosts\.ini:2: host h: ends in ':'/);
  fails("[a:children]\nb\n[b:children]\na\n", /^hosts\.ini:4: group a cannot be a child of b/);
});

test("a variable named __proto__, constructor or prototype is refused at its line, not dropped", () => {
  for (const name of ["__proto__", "constructor", "prototype"]) {
    assert.throws(
      () => parseAnsibleIni("inv.ini", `[web]\nh1 ${name}={"polluted":1}\n`),
      (e: GalleyError) =>
        e.code === "INVENTORY_INVALID" &&
        e.message.startsWith(`inv.ini:2: "${name}" cannot be a variable name`),
    );
    assert.throws(
      () => parseAnsibleIni("inv.ini", `[web]\nh1\n[web:vars]\n${name}=1\n`),
      (e: GalleyError) => e.code === "INVENTORY_INVALID" && e.message.startsWith("inv.ini:4:"),
    );
  }
});
