import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import { test } from "node:test";
import { LocalHost } from "./local.ts";
import { factsScript, nodeArch, parseFacts } from "./remote-facts.ts";

test("remote facts: the script run here gives LocalHost's facts", async () => {
  const output = execFileSync("sh", ["-c", factsScript], { encoding: "utf8" });
  const remote = parseFacts(output);
  const local = await new LocalHost().facts();
  const { fqdn: _remoteFqdn, ...rest } = remote;
  const { fqdn: _localFqdn, ...localRest } = local;
  assert.deepEqual(rest, localRest);
  assert.ok(remote.fqdn.startsWith(remote.hostname));
});

test("remote facts: without ip(8), IPv6 addresses come from /proc/net/if_inet6 as Node writes them", () => {
  const inet6 = readFileSync("/proc/net/if_inet6", "utf8");
  const output = `\n@@galley-facts@@ inet6\n${inet6}\n@@galley-facts@@ end\n`;
  const fromProc = parseFacts(output)
    .addresses.map((a) => `${a.interface} ${a.address}`)
    .sort();
  const fromNode = Object.entries(os.networkInterfaces())
    .flatMap(([name, list]) =>
      (list ?? []).filter((a) => !a.internal && a.family === "IPv6").map((a) => `${name} ${a.address}`),
    )
    .sort();
  assert.deepEqual(fromProc, fromNode);
});

test("remote facts: uname -m names become LocalHost's arch names", () => {
  assert.deepEqual(["x86_64", "aarch64", "armv7l", "i686", "riscv64", "s390x"].map(nodeArch), [
    "x86_64",
    "arm64",
    "arm",
    "ia32",
    "riscv64",
    "s390x",
  ]);
});

test("remote facts: a missing section gives a safe default, not a crash", () => {
  const facts = parseFacts("\n@@galley-facts@@ hostname\nweb1.example.com\n@@galley-facts@@ end\n");
  assert.equal(facts.hostname, "web1");
  assert.equal(facts.fqdn, "web1.example.com");
  assert.equal(facts.os.id, "unknown");
  assert.equal(facts.init, "sysv");
  assert.deepEqual(facts.addresses, []);
});
