import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { test } from "node:test";
import { Agent } from "../src/agent/agent.ts";
import { ensureAgentKey, publicKeyPem } from "../src/agent/config.ts";
import { motdBundle, motdJob, testCertificates } from "../src/agent/testing.ts";
import { createAgentHub, type ServerAgentHub } from "../src/server/agents/hub.ts";
import { testSettings } from "../src/server/agents/testing.ts";
import { tempDir } from "../src/resources/testing.ts";
import { openSqliteStore } from "../src/store/sqlite.ts";
import type { Store } from "../src/store/store.ts";

// `galley agent run` (the Agent) against Galley's own agent hub and store on a real HTTPS server:
// connected, a job converges through hub.converge, host calls through hub.connect, drift reports
// stored, and a server that dies and comes back on the same port gets the agent back without a
// re-enrollment and every report queued meanwhile exactly once.

const target = { stack: "prod", instance: "web1" };
const settings = {
  ...testSettings,
  keepaliveMs: 150,
  runIntervalMs: 300,
  splayMs: 100,
  runMode: "report" as const,
  metricsMs: 150,
};

/** One server process's parts: the hub on HTTPS, and the bundle route (B2's lands later) in front. */
async function startServer(
  store: Store,
  tls: { key: string; cert: string },
  bundles: Map<string, Buffer>,
  port = 0,
) {
  let hub: ServerAgentHub | undefined;
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const id = /^\/v1\/bundles\/([0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
    const session = /^Agent (.+)$/.exec(req.headers.authorization ?? "")?.[1];
    const data = id ? bundles.get(id) : undefined;
    if (!data || !session || !hub?.agentForSession(session)) {
      res.writeHead(404, { "content-type": "application/json" });
      return void res.end(JSON.stringify({ error: { code: "BUNDLE_UNKNOWN", message: "no such bundle" } }));
    }
    res.writeHead(200, { "content-type": "application/gzip" });
    res.end(data);
  });
  hub = createAgentHub({ store, settings, log: () => {}, id: "test-server" });
  hub.attach(server);
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    hub,
    port: (server.address() as AddressInfo).port,
    async close() {
      await hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

test("the agent with Galley's hub and store: jobs, host calls, drift reports, a server restart without re-enrollment", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "tls"));
  const store = openSqliteStore(path.join(dir, "galley.db"));
  t.after(() => store.close());
  const key = await ensureAgentKey(path.join(dir, "etc", "agent.key"));
  await store.registerAgent({ ...target, publicKey: publicKeyPem(key) });
  const bundle = await motdBundle(path.join(dir, "kitchen"));
  const bundles = new Map([[bundle.id, await fs.readFile(bundle.file)]]);
  let server = await startServer(store, tls, bundles);
  t.after(() => server.close());

  const lines: string[] = [];
  const agent = new Agent({
    config: { server: `https://localhost:${server.port}`, ca: tls.ca, ...target, generation: 1 },
    key,
    stateDir: path.join(dir, "agent"),
    hostStateDir: path.join(dir, "host-state"),
    log: (line) => lines.push(line),
    backoff: { baseMs: 100, maxMs: 1_000 },
  });
  t.after(() => agent.stop());
  await agent.start();
  await waitFor("the hub sees the agent", () => server.hub.connected(target));

  const file = path.join(dir, "motd");
  const job = motdJob(bundle.id, file, "v1 v1-secret-value", {
    periodic: true,
    secrets: ["v1-secret-value"],
  });
  const outcome = await server.hub.converge(target, job, {});
  assert.equal(outcome.status, "ok", JSON.stringify(outcome));
  assert.equal(await fs.readFile(file, "utf8"), "v1 v1-secret-value\nhello\n");
  const again = await server.hub.converge(target, job, {});
  assert.ok("report" in again && again.report.summary.changed === 0, JSON.stringify(again));
  // the bundle is cached: nothing fetched again
  const cached = await fs.readFile(path.join(dir, "agent", "bundles", `${bundle.id}.tgz`));
  assert.equal(createHash("sha256").update(cached).digest("hex"), bundle.id);

  const host = await server.hub.connect(target);
  assert.deepEqual(await host.readFile(file), new Uint8Array(Buffer.from("v1 v1-secret-value\nhello\n")));
  assert.equal((await host.exec(["cat", file])).stdout, "v1 v1-secret-value\nhello\n");
  assert.equal(await host.stat(path.join(dir, "nothing")), undefined);
  await host.close();

  await fs.writeFile(file, "edited\n");
  const drift = await waitFor("a drift run stored", async () =>
    (await store.listAgentRuns(target.stack, target.instance)).find((run) => run.status === "drift"),
  );
  assert.equal(drift.changed, 1);
  assert.equal(drift.mode, "report");
  assert.equal(await fs.readFile(file, "utf8"), "edited\n");

  // the server dies; the agent's drift runs go on and queue; a new server on the same port
  const port = server.port;
  await server.close();
  await waitFor("the agent sees it", () => !agent.connected);
  const stored = new Set(
    (await store.listAgentRuns(target.stack, target.instance, { limit: 1000 })).map((r) => r.seq),
  );
  const queued = await waitFor("reports queued while the server is down", async () => {
    const pending = (await agent.queue.pending()).filter((run) => !stored.has(run.seq));
    return pending.length >= 2 && pending;
  });
  server = await startServer(store, tls, bundles, port);
  await waitFor("back without re-enrollment", () => server.hub.connected(target));
  await waitFor("the queue delivered", async () => (await agent.queue.pending()).length === 0);
  const runs = await store.listAgentRuns(target.stack, target.instance, { limit: 1000 });
  const seqs = runs.map((run) => run.seq).sort((a, b) => a - b);
  assert.equal(new Set(seqs).size, seqs.length, "no report stored twice");
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    "no report lost",
  );
  for (const run of queued) assert.ok(seqs.includes(run.seq));
  assert.equal((await store.getAgent(target.stack, target.instance))?.generation, 1);
  // the job's secret never reached the store
  assert.doesNotMatch(JSON.stringify(runs), /v1-secret-value/);
});

test("an agent the server refuses says why, retries at the longest delay, and gets in once its key is registered", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "tls"));
  const store = openSqliteStore(path.join(dir, "galley.db"));
  t.after(() => store.close());
  const server = await startServer(store, tls, new Map());
  t.after(() => server.close());
  const key = await ensureAgentKey(path.join(dir, "etc", "agent.key"));
  const lines: string[] = [];
  const agent = new Agent({
    config: { server: `https://localhost:${server.port}`, ca: tls.ca, ...target, generation: 1 },
    key,
    stateDir: path.join(dir, "agent"),
    hostStateDir: path.join(dir, "host-state"),
    log: (line) => lines.push(line),
    backoff: { baseMs: 100, maxMs: 300 },
  });
  let refusals = 0;
  agent.on("refused", () => {
    refusals += 1;
  });
  t.after(() => agent.stop());
  await agent.start();
  await waitFor("refused twice", () => refusals >= 2);
  assert.match(
    lines.find((line) => line.startsWith("the server refused this agent")) ?? "",
    /refused this agent: .+/,
  );
  assert.equal(agent.connected, false);
  await store.registerAgent({ ...target, publicKey: publicKeyPem(key) });
  await waitFor("connected once enrolled", () => server.hub.connected(target) && agent.connected);
});
