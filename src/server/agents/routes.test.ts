import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { preparedBundleFile } from "../../cookbooks/prepared.ts";
import { startServer } from "../server.ts";
import { createAgentHub, type ServerAgentHub } from "./hub.ts";
import { register } from "./routes.ts";
import { agentKey, eventually, TestAgent } from "./testing.ts";

interface Answer {
  status: number;
  body: Buffer;
  json: () => Record<string, unknown> & { error?: { code: string; message: string } };
}

function call(
  server: { url: string; caPem: string },
  method: string,
  route: string,
  options: { auth?: string; body?: unknown } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const data = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      `${server.url}${route}`,
      {
        method,
        ca: server.caPem,
        headers: {
          ...(options.auth ? { authorization: options.auth } : {}),
          ...(data ? { "content-type": "application/json" } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, body, json: () => JSON.parse(body.toString("utf8")) });
        });
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

test("agent routes on the real server: mint, enroll once, connect, bundles for a connected agent's session, the agent list", async (t) => {
  const kitchen = mkdtempSync(path.join(tmpdir(), "galley-agent-routes-"));
  const cache = path.join(kitchen, "cache");
  const previousCache = process.env.GALLEY_CACHE_DIR;
  process.env.GALLEY_CACHE_DIR = cache;
  t.after(() => {
    if (previousCache === undefined) delete process.env.GALLEY_CACHE_DIR;
    else process.env.GALLEY_CACHE_DIR = previousCache;
    rmSync(kitchen, { recursive: true, force: true });
  });
  const server = await startServer({
    kitchen,
    hub: (ctx) => createAgentHub(ctx),
    routes: [register],
    log: () => {},
  });
  t.after(() => server.close());
  const hub = server.ctx.agents as ServerAgentHub;
  const admin = `Bearer ${readFileSync(server.adminTokenFile, "utf8").trim()}`;
  await server.ctx.store.upsertInstance({ stack: "prod", name: "web1", layers: ["web"], provider: "ssh" });

  // minting needs an admin token and an instance that exists
  assert.equal((await call(server, "POST", "/v1/stacks/prod/instances/web1/enrollment")).status, 401);
  const missing = await call(server, "POST", "/v1/stacks/prod/instances/web9/enrollment", { auth: admin });
  assert.equal(missing.status, 404);
  const minted = await call(server, "POST", "/v1/stacks/prod/instances/web1/enrollment", { auth: admin });
  assert.equal(minted.status, 201);
  const { token } = minted.json() as { token: string };
  assert.match(token, /^gle1_/);

  // enrollment: once; the token is the credential
  const key = agentKey();
  const enroll = { token, publicKey: key.publicKey, hostname: "web1.example" };
  const first = await call(server, "POST", "/v1/agents/enroll", { body: enroll });
  assert.equal(first.status, 201, first.body.toString());
  assert.deepEqual(first.json(), { stack: "prod", instance: "web1", generation: 1 });
  const again = await call(server, "POST", "/v1/agents/enroll", { body: enroll });
  assert.equal(again.status, 401);
  assert.equal(again.json().error?.code, "ENROLL_REFUSED");
  const forged = await call(server, "POST", "/v1/agents/enroll", {
    body: { token: `gle1_${Buffer.from("{}").toString("base64url")}`, publicKey: key.publicKey },
  });
  assert.equal(forged.status, 401);
  assert.equal((await server.ctx.store.listAgents()).length, 1);
  const refusals = await server.ctx.store.listAudit({ outcome: "refused" });
  assert.ok(refusals.some((a) => a.action === "agent.enroll" && /ENROLL_REFUSED/.test(a.reason ?? "")));
  assert.ok(
    refusals.every((a) => !JSON.stringify(a).includes(token.slice(5))),
    "no token in the audit log",
  );

  // the channel on the server's own port
  const channelUrl = `${server.url.replace("https:", "wss:")}/v1/agents/channel`;
  const agent = await TestAgent.connect({ channelUrl, ca: server.caPem }, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const welcome = await agent.next((m) => m.type === "welcome");
  const session = welcome.type === "welcome" ? welcome.session : "";
  assert.ok(hub.connected({ stack: "prod", instance: "web1" }));

  // bundles: the session of a connected agent, nothing else
  const id = randomBytes(32).toString("hex");
  const bytes = randomBytes(100_000);
  mkdirSync(path.dirname(preparedBundleFile(id, cache)), { recursive: true });
  writeFileSync(preparedBundleFile(id, cache), bytes);
  assert.equal((await call(server, "GET", `/v1/bundles/${id}`)).status, 401);
  assert.equal((await call(server, "GET", `/v1/bundles/${id}`, { auth: admin })).status, 401);
  assert.equal((await call(server, "GET", `/v1/bundles/${id}`, { auth: "Agent not-a-session" })).status, 401);
  // not yet sent to this agent in a job: as unknown as a bundle that does not exist
  const early = await call(server, "GET", `/v1/bundles/${id}`, { auth: `Agent ${session}` });
  assert.equal(early.status, 404);
  assert.equal(early.json().error?.code, "BUNDLE_UNKNOWN");
  const job = {
    bundle: id,
    runList: ["web"],
    attributes: [],
    mode: "apply" as const,
    command: "test",
    secrets: [],
  };
  const outcome = hub.converge({ stack: "prod", instance: "web1" }, job, {});
  const sent = await agent.next((m) => m.type === "job");
  if (sent.type !== "job") throw new Error("no job");
  agent.send({
    type: "job-done",
    id: sent.id,
    outcome: { status: "skipped", reason: "test", durationMs: 0 },
  });
  assert.equal((await outcome).status, "skipped");
  const got = await call(server, "GET", `/v1/bundles/${id}`, { auth: `Agent ${session}` });
  assert.equal(got.status, 200);
  assert.ok(got.body.equals(bytes));
  const unknown = await call(server, "GET", `/v1/bundles/${"0".repeat(64)}`, { auth: `Agent ${session}` });
  assert.equal(unknown.status, 404);
  assert.equal(unknown.json().error?.code, "BUNDLE_UNKNOWN");
  assert.equal(
    (await call(server, "GET", "/v1/bundles/..%2f..%2fetc%2fpasswd", { auth: `Agent ${session}` })).status,
    400,
  );

  // the agent list
  const listed = await call(server, "GET", "/v1/agents", { auth: admin });
  assert.equal(listed.status, 200);
  const [entry] = (listed.json() as { agents: Record<string, unknown>[] }).agents;
  assert.equal(entry?.instance, "web1");
  assert.equal(entry?.connected, true);
  assert.equal(entry?.remote, "127.0.0.1");

  // once the agent is gone, its session opens nothing
  agent.ws.close(1000);
  await eventually(() => !hub.connected({ stack: "prod", instance: "web1" }), "the agent gone");
  assert.equal((await call(server, "GET", `/v1/bundles/${id}`, { auth: `Agent ${session}` })).status, 401);
  const after = await call(server, "GET", "/v1/agents?stack=prod", { auth: admin });
  assert.equal((after.json() as { agents: { connected: boolean }[] }).agents[0]?.connected, false);

  // re-enrollment through the routes: the connection still open with the old key ends, the old key is refused
  const old = await TestAgent.connect({ channelUrl, ca: server.caPem }, "prod", "web1", key.privateKey);
  t.after(() => old.close());
  assert.ok(old.received.some((m) => m.type === "welcome"));
  const lost: string[] = [];
  hub.on("lost", (_target, reason) => lost.push(reason));
  const renewed = await call(server, "POST", "/v1/stacks/prod/instances/web1/enrollment", { auth: admin });
  const next = agentKey();
  const second = await call(server, "POST", "/v1/agents/enroll", {
    body: { token: (renewed.json() as { token: string }).token, publicKey: next.publicKey },
  });
  assert.equal((second.json() as { generation: number }).generation, 2);
  assert.equal((await old.closed).code, 4000);
  await eventually(() => lost.includes("re-enrolled with a new key"), "the old connection lost");
  const stale = await TestAgent.connect({ channelUrl, ca: server.caPem }, "prod", "web1", key.privateKey);
  assert.ok(stale.received.some((m) => m.type === "refused"));
  const current = await TestAgent.connect({ channelUrl, ca: server.caPem }, "prod", "web1", next.privateKey);
  t.after(() => current.close());
  assert.ok(current.received.some((m) => m.type === "welcome"));
  assert.equal(hub.connections()[0]?.generation, 2);
});
