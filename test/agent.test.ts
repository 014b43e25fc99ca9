import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { Agent } from "../src/agent/agent.ts";
import { ensureAgentKey, publicKeyPem, readAgentConfig, readAgentKey } from "../src/agent/config.ts";
import { enrollAgent } from "../src/agent/enroll.ts";
import { motdBundle, motdJob } from "../src/agent/testing.ts";
import { preparedBundleFile } from "../src/cookbooks/prepared.ts";
import { tempDir } from "../src/resources/testing.ts";
import { createAgentHub } from "../src/server/agents/hub.ts";
import { register } from "../src/server/agents/routes.ts";
import type { AgentHub } from "../src/server/context.ts";
import { type RunningServer, startServer } from "../src/server/server.ts";
import { call } from "../src/server/test-support.ts";

// `galley agent` (the Agent, in-process) against Galley's real server: its CA, its enrollment and
// bundle routes, its hub and store. Enrolled with a token minted by the API; a job converges through
// the hub; host calls; drift reports stored; the server killed and started again on the same port:
// the agent is back without re-enrolling and every report queued meanwhile is stored exactly once.

const target = { stack: "prod", instance: "web1" };
const settings = {
  keepaliveMs: 150,
  runIntervalMs: 300,
  splayMs: 100,
  runMode: "report" as const,
  metricsMs: 150,
};

function serve(kitchen: string, listen = "127.0.0.1:0"): Promise<RunningServer> {
  return startServer({
    kitchen,
    listen,
    settings,
    hub: (ctx) => createAgentHub(ctx),
    routes: [register],
    log: () => {},
  });
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

/** A kitchen for a server, its bundle cache in it (GALLEY_CACHE_DIR, restored after the test). */
async function kitchenFor(
  t: import("node:test").TestContext,
): Promise<{ dir: string; kitchen: string; cache: string }> {
  const dir = await tempDir();
  const kitchen = path.join(dir, "kitchen");
  const cache = path.join(dir, "cache");
  await fs.mkdir(kitchen, { recursive: true });
  const previous = process.env.GALLEY_CACHE_DIR;
  process.env.GALLEY_CACHE_DIR = cache;
  t.after(() => {
    if (previous === undefined) delete process.env.GALLEY_CACHE_DIR;
    else process.env.GALLEY_CACHE_DIR = previous;
  });
  return { dir, kitchen, cache };
}

test("the agent with Galley's server: enroll, jobs, host calls, drift reports, a server restart without re-enrollment", async (t) => {
  const { dir, kitchen, cache } = await kitchenFor(t);
  let server = await serve(kitchen);
  t.after(() => server.close());
  const admin = (await fs.readFile(server.adminTokenFile, "utf8")).trim();
  await server.ctx.store.upsertInstance({ stack: "prod", name: "web1", layers: ["web"], provider: "ssh" });
  const minted = await call(server, "POST", "/v1/stacks/prod/instances/web1/enrollment", { token: admin });
  assert.equal(minted.status, 201, minted.text);
  const { token } = minted.json as { token: string };

  const configFile = path.join(dir, "etc", "agent.json");
  const enrolled = await enrollAgent({ server: server.url, token, configFile, hostname: "web1" });
  assert.equal(enrolled.caFingerprint, server.caFingerprint);
  await assert.rejects(enrollAgent({ server: server.url, token, configFile }), { code: "ENROLL_REFUSED" });

  const bundle = await motdBundle(path.join(dir, "cookbooks"));
  await fs.mkdir(path.dirname(preparedBundleFile(bundle.id, cache)), { recursive: true });
  await fs.copyFile(bundle.file, preparedBundleFile(bundle.id, cache));

  const lines: string[] = [];
  const config = await readAgentConfig(configFile);
  const agent = new Agent({
    config,
    key: (await readAgentKey(enrolled.keyFile))!,
    stateDir: path.join(dir, "agent"),
    hostStateDir: path.join(dir, "host-state"),
    log: (line) => lines.push(line),
    backoff: { baseMs: 100, maxMs: 1_000 },
  });
  t.after(() => agent.stop());
  await agent.start();
  const hub = (): AgentHub => server.ctx.agents;
  await waitFor("the hub sees the agent", () => hub().connected(target));

  const file = path.join(dir, "motd");
  const content = "v1 v1-secret-value\nhello\n";
  const job = motdJob(bundle.id, file, "v1 v1-secret-value", {
    periodic: true,
    secrets: ["v1-secret-value"],
  });
  const outcome = await hub().converge(target, job, {});
  assert.equal(outcome.status, "ok", JSON.stringify(outcome));
  assert.equal(await fs.readFile(file, "utf8"), content);
  const again = await hub().converge(target, job, {});
  assert.ok("report" in again && again.report.summary.changed === 0, JSON.stringify(again));

  const host = await hub().connect(target);
  assert.deepEqual(await host.readFile(file), new Uint8Array(Buffer.from(content)));
  assert.equal((await host.exec(["cat", file])).stdout, content);
  assert.equal(await host.stat(path.join(dir, "nothing")), undefined);
  await host.close();

  await fs.writeFile(file, "edited\n");
  const drift = await waitFor("a drift run stored", async () =>
    (await server.ctx.store.listAgentRuns(target.stack, target.instance)).find(
      (run) => run.status === "drift",
    ),
  );
  assert.equal(drift.changed, 1);
  assert.equal(drift.mode, "report");
  assert.equal(await fs.readFile(file, "utf8"), "edited\n");

  // the server dies; the agent's drift runs go on and queue; a new server on the same port
  const port = server.port;
  const runsBefore = await server.ctx.store.listAgentRuns(target.stack, target.instance, { limit: 1000 });
  await server.close();
  await waitFor("the agent sees it", () => !agent.connected);
  const stored = new Set(runsBefore.map((r) => r.seq));
  const queued = await waitFor("reports queued while the server is down", async () => {
    const pending = (await agent.queue.pending()).filter((run) => !stored.has(run.seq));
    return pending.length >= 2 && pending;
  });
  server = await serve(kitchen, `127.0.0.1:${port}`);
  await waitFor("back without re-enrollment", () => hub().connected(target));
  await waitFor("the queue delivered", async () => (await agent.queue.pending()).length === 0);
  const runs = await server.ctx.store.listAgentRuns(target.stack, target.instance, { limit: 1000 });
  const seqs = runs.map((run) => run.seq).sort((a, b) => a - b);
  assert.equal(new Set(seqs).size, seqs.length, "no report stored twice");
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    "no report lost",
  );
  for (const run of queued) assert.ok(seqs.includes(run.seq));
  assert.equal((await server.ctx.store.getAgent(target.stack, target.instance))?.generation, 1);
  // the job's secret never reached the store
  assert.doesNotMatch(JSON.stringify(runs), /v1-secret-value/);
});

test("an agent the server refuses says why, retries at the longest delay, and gets in once its key is registered", async (t) => {
  const { dir, kitchen } = await kitchenFor(t);
  const server = await serve(kitchen);
  t.after(() => server.close());
  const key = await ensureAgentKey(path.join(dir, "etc", "agent.key"));
  const lines: string[] = [];
  const agent = new Agent({
    config: { server: server.url, ca: server.caPem, ...target, generation: 1 },
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
  await server.ctx.store.registerAgent({ ...target, publicKey: publicKeyPem(key) });
  await waitFor("connected once enrolled", () => server.ctx.agents.connected(target) && agent.connected);
});
