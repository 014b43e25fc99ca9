import assert from "node:assert/strict";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { expandHostPattern, parseAddress } from "./ranges.ts";

// expected values checked against ansible-core 2.14's BaseInventoryPlugin._expand_hostpattern
const cases: [string, string[], number?][] = [
  ["www[01:03].example.com", ["www01.example.com", "www02.example.com", "www03.example.com"]],
  ["www[01:03].example.com:2222", ["www01.example.com", "www02.example.com", "www03.example.com"], 2222],
  ["db-[a:c]", ["db-a", "db-b", "db-c"]],
  ["db-[a:c]:22", ["db-a", "db-b", "db-c"], 22],
  ["h[1:10:3]", ["h1", "h4", "h7", "h10"]],
  ["h[:2]", ["h0", "h1", "h2"]],
  ["h[A:C]", ["hA", "hB", "hC"]],
  ["h[y:B]", ["hy", "hz", "hA", "hB"]],
  ["h[01:02]-[a:b]", ["h01-a", "h01-b", "h02-a", "h02-b"]],
  ["10.0.0.[1:3]", ["10.0.0.1", "10.0.0.2", "10.0.0.3"]],
  ["10.0.0.1:22", ["10.0.0.1"], 22],
  ["[::1]:2222", ["::1"], 2222],
  ["fe80::1", ["fe80::1"]],
  // not a valid host name: the whole text is the name, no port
  ["host_:22", ["host_:22"]],
  ["a/b:22", ["a/b:22"]],
];

test("host patterns expand like Ansible's: leading zeros kept, letters, steps, ports", () => {
  for (const [pattern, names, port] of cases) {
    assert.deepEqual(
      expandHostPattern(pattern, "f:1"),
      port === undefined ? { names } : { names, port },
      pattern,
    );
  }
});

test("a wrong range names the place and says how to write one", () => {
  for (const pattern of ["h[1:2:3:4]", "h[1:]", "h[01:100]", "h[c:a]", "h[1:2", "h[x:9]"]) {
    assert.throws(
      () => expandHostPattern(pattern, "hosts.ini:7"),
      (e: GalleyError) =>
        e.code === "INVENTORY_INVALID" && e.message.startsWith("hosts.ini:7: host range") && !!e.hint,
      pattern,
    );
  }
});

test("parseAddress splits a port only from a valid address", () => {
  assert.deepEqual(parseAddress("web1:2222"), { host: "web1", port: 2222 });
  assert.deepEqual(parseAddress("web[1:3]"), { host: "web[1:3]" });
  assert.equal(parseAddress("web:db"), undefined);
});

test("a range that expands to more than 10,000 hosts is refused at once, naming the file and line", {
  timeout: 10_000,
}, () => {
  for (const pattern of ["h[0:99999999]", "h[0:99][0:999]", "h[0:99999999:1]"]) {
    const started = Date.now();
    assert.throws(
      () => expandHostPattern(pattern, "inv.ini:7"),
      (e: GalleyError) =>
        e.code === "INVENTORY_INVALID" &&
        e.message === `inv.ini:7: host range ${pattern} expands to more than 10000 hosts`,
    );
    assert.ok(Date.now() - started < 10_000, `${pattern} took ${Date.now() - started} ms`);
  }
  assert.equal(expandHostPattern("h[1:100][1:100]", "inv.ini:7").names.length, 10_000);
});
