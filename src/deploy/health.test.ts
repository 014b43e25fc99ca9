import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { checkHealth } from "./health.ts";

// Real checks against a real HTTP server on loopback and real commands on this machine.

async function server(answer: (n: number) => { status: number; body: string }) {
  let n = 0;
  const s = http.createServer((_req, res) => {
    const a = answer(++n);
    res.writeHead(a.status).end(a.body);
  });
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  return {
    port: (s.address() as AddressInfo).port,
    close: () => new Promise((r) => s.close(r)),
    count: () => n,
  };
}

test("http check: passes once the status and body match, after failed tries; each try is logged", async (t) => {
  const s = await server((n) =>
    n < 3 ? { status: 502, body: "starting" } : { status: 200, body: "ok hello" },
  );
  t.after(() => s.close());
  const result = await checkHealth(
    { http: { path: "/health", port: s.port, body: "hello" }, timeout: 2, retries: 5, interval: 0 },
    { address: "127.0.0.1" },
  );
  assert.equal(result.ok, true);
  assert.equal(result.tries, 3);
  assert.match(result.log[0]!, /HTTP 502, not 200/);
});

test("http check: fails after its tries when the body never matches, or nothing listens", async (t) => {
  const s = await server(() => ({ status: 200, body: "maintenance" }));
  t.after(() => s.close());
  const wrong = await checkHealth(
    { http: { path: "/", port: s.port, body: "hello" }, timeout: 2, retries: 2, interval: 0 },
    { address: "127.0.0.1" },
  );
  assert.deepEqual([wrong.ok, wrong.tries, s.count()], [false, 2, 2]);
  assert.match(wrong.log[1]!, /without "hello"/);
  const gone = await server(() => ({ status: 200, body: "" }));
  await gone.close();
  const closed = await checkHealth(
    { http: { path: "/", port: gone.port, method: "HEAD" }, timeout: 1, retries: 1, interval: 0 },
    { address: "127.0.0.1" },
  );
  assert.equal(closed.ok, false);
  assert.match(closed.log[0]!, new RegExp(`HEAD http://127\\.0\\.0\\.1:${gone.port}/: ECONNREFUSED`));
});

test("command check: runs on the instance's host; its exit status decides", async () => {
  const host = new LocalHost();
  const ok = await checkHealth(
    { command: "test 1 = 1", timeout: 5, retries: 1, interval: 0 },
    { address: "127.0.0.1", host: async () => host },
  );
  assert.equal(ok.ok, true);
  const bad = await checkHealth(
    { command: "echo not ready >&2; exit 3", timeout: 5, retries: 2, interval: 0 },
    { address: "127.0.0.1", host: async () => host },
  );
  assert.equal(bad.ok, false);
  assert.match(bad.log[1]!, /exit 3 \(not ready\)/);
});
