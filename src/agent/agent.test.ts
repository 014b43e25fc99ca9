import assert from "node:assert/strict";
import { createPublicKey, randomBytes, verify } from "node:crypto";
import * as fs from "node:fs/promises";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { test } from "node:test";
import { WebSocketServer, type WebSocket } from "ws";
import type { AgentMessage, AgentRunReport, ConvergeJob, ServerMessage } from "../fleet/agent-protocol.ts";
import { authPayload } from "../fleet/agent-protocol.ts";
import type { HostOutcome } from "../fleet/pipeline.ts";
import { tempDir } from "../resources/testing.ts";
import { Agent } from "./agent.ts";
import { readAgentConfig, readAgentKey } from "./config.ts";
import { enrollAgent } from "./enroll.ts";
import { motdBundle, motdJob, testCertificates } from "./testing.ts";
import { caFingerprint, encodeEnrollmentToken } from "./token.ts";

// The agent against a real HTTPS server and a real WebSocket speaking the server's side of the
// channel protocol (the test's peer, written from the protocol, not Galley's server).

const welcome = {
  keepaliveMs: 100,
  runIntervalMs: 400,
  splayMs: 100,
  runMode: "report" as const,
  metricsMs: 100,
};

class Peer {
  readonly secrets = new Set<string>();
  readonly keys = new Map<string, string>();
  readonly stored = new Map<number, AgentRunReport>();
  duplicates = 0;
  bundleFetches = 0;
  readonly received: AgentMessage[] = [];
  readonly sessions = new Set<string>();
  sockets = new Set<WebSocket>();
  silent = false;
  #server: https.Server | undefined;
  #wss: WebSocketServer | undefined;
  #timers = new Set<NodeJS.Timeout>();
  readonly bundles = new Map<string, Buffer>();
  port = 0;

  readonly tls: { ca: string; key: string; cert: string };

  constructor(tls: { ca: string; key: string; cert: string }) {
    this.tls = tls;
  }

  async listen(port = 0): Promise<void> {
    const server = https.createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      void this.#http(req, res);
    });
    const wss = new WebSocketServer({ server, path: "/v1/agents/channel" });
    wss.on("connection", (socket) => this.#channel(socket));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    this.#wss = wss;
  }

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
    this.#wss?.close();
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve) ?? resolve(undefined));
  }

  send(message: ServerMessage): void {
    for (const socket of this.sockets) socket.send(JSON.stringify(message));
  }

  async #http(
    req: import("node:http").IncomingMessage,
    res: import("node:http").ServerResponse,
  ): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && req.url === "/v1/ca.pem") return void res.end(this.tls.ca);
    if (req.method === "POST" && req.url === "/v1/agents/enroll") {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { token: string; publicKey: string };
      const token = JSON.parse(Buffer.from(body.token.slice(5), "base64url").toString()) as {
        s: string;
        i: string;
        k: string;
      };
      if (!this.secrets.delete(token.k))
        return json(401, {
          error: { code: "UNAUTHORIZED", message: "the enrollment token is used, expired or unknown" },
        });
      this.keys.set(`${token.s}/${token.i}`, body.publicKey);
      return json(200, { stack: token.s, instance: token.i, generation: 1 });
    }
    const bundle = /^\/v1\/bundles\/([0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
    if (req.method === "GET" && bundle) {
      const session = /^Agent (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!session || !this.sessions.has(session))
        return json(401, { error: { code: "UNAUTHORIZED", message: "no session" } });
      const data = this.bundles.get(bundle);
      if (!data) return json(404, { error: { code: "NOT_FOUND", message: "no such bundle" } });
      this.bundleFetches += 1;
      res.writeHead(200, { "content-type": "application/gzip" });
      return void res.end(data);
    }
    json(404, { error: { code: "NOT_FOUND", message: "no route" } });
  }

  #channel(socket: WebSocket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    const nonce = randomBytes(16).toString("base64url");
    const send = (m: ServerMessage) => socket.send(JSON.stringify(m));
    send({ type: "hello", nonce, server: "test peer" });
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString()) as AgentMessage;
      this.received.push(message);
      if (message.type === "auth") {
        const key = this.keys.get(`${message.stack}/${message.instance}`);
        const ok =
          key !== undefined &&
          verify(
            null,
            Buffer.from(authPayload(nonce, message.stack, message.instance)),
            createPublicKey(key),
            Buffer.from(message.signature, "base64"),
          );
        if (!ok) {
          send({ type: "refused", error: { code: "UNAUTHORIZED", message: "unknown agent" } });
          return socket.close(4401, "refused");
        }
        const session = randomBytes(16).toString("base64url");
        this.sessions.add(session);
        send({ type: "welcome", session, ...welcome });
        let seq = 0;
        const timer = setInterval(() => {
          if (!this.silent) send({ type: "keepalive", seq: ++seq });
        }, welcome.keepaliveMs);
        this.#timers.add(timer);
        socket.on("close", () => clearInterval(timer));
      }
      if (message.type === "report") {
        if (this.stored.has(message.run.seq)) this.duplicates += 1;
        else this.stored.set(message.run.seq, message.run);
        send({ type: "ack", seq: message.run.seq });
      }
    });
  }
}

async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test("enroll, connect, converge jobs, drift runs, host calls, silence, a server restart: nothing lost, nothing doubled", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "tls"));
  const peer = new Peer(tls);
  await peer.listen();
  t.after(() => peer.close());
  const secret = randomBytes(32).toString("base64url");
  const token = (ca = caFingerprint(tls.ca)) =>
    encodeEnrollmentToken({ stack: "prod", instance: "web1", secret, ca });
  const configFile = path.join(dir, "etc", "agent.json");

  // a token naming another CA: refused before anything is sent
  await assert.rejects(enrollAgent({ server: peer.url, token: token("0".repeat(64)), configFile }), {
    code: "ENROLL_REFUSED",
    message: "the server's CA is not the one the token names",
  });
  peer.secrets.add(secret);
  const enrolled = await enrollAgent({
    server: `${peer.url}/`,
    token: token(),
    configFile,
    hostname: "web1",
  });
  assert.equal(enrolled.stack, "prod");
  assert.equal(enrolled.instance, "web1");
  assert.equal(peer.keys.size, 1);
  // a used token: the server's refusal, with its reason
  await assert.rejects(
    enrollAgent({ server: peer.url, token: token(), configFile }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "ENROLL_REFUSED");
      assert.match(error.message, /used, expired or unknown/);
      return true;
    },
  );
  // an unreachable server
  await assert.rejects(enrollAgent({ server: "https://127.0.0.1:1", token: token(), configFile }), {
    code: "HOST_UNREACHABLE",
  });

  const config = await readAgentConfig(configFile);
  const key = (await readAgentKey(path.join(dir, "etc", "agent.key")))!;
  const bundle = await motdBundle(path.join(dir, "kitchen"));
  peer.bundles.set(bundle.id, await fs.readFile(bundle.file));
  const lines: string[] = [];
  const agent = new Agent({
    config,
    key,
    stateDir: path.join(dir, "agent"),
    hostStateDir: path.join(dir, "host-state"),
    log: (line) => lines.push(line),
    backoff: { baseMs: 50, maxMs: 400 },
  });
  t.after(() => agent.stop());
  const done = new Map<string, HostOutcome>();
  agent.on("job-done", (id: string, outcome: HostOutcome) => done.set(id, outcome));
  await agent.start();
  await waitFor("connected", () => agent.connected);

  // a periodic job: converged, phases and the outcome sent up
  const target = path.join(dir, "motd");
  const job: ConvergeJob = motdJob(bundle.id, target, "v1", { periodic: true });
  peer.send({ type: "job", id: "j1", job });
  const first = await waitFor("job j1", () => done.get("j1"));
  assert.equal(first.status, "ok", JSON.stringify(first));
  assert.equal(await fs.readFile(target, "utf8"), "v1\nhello\n");
  assert.ok(
    peer.received.some((m) => m.type === "job-phase" && m.id === "j1" && m.phase.phase === "converging"),
  );
  assert.ok(peer.received.some((m) => m.type === "job-done" && m.id === "j1"));
  peer.send({ type: "job", id: "j2", job });
  const second = await waitFor("job j2", () => done.get("j2"));
  assert.ok("report" in second && second.report.summary.changed === 0);
  assert.equal(peer.bundleFetches, 1);

  // a host call: bytes come back as base64
  peer.send({ type: "call", id: "c1", method: "readFile", args: [target] });
  const result = await waitFor("call c1", () =>
    peer.received.find((m) => m.type === "result" && m.id === "c1"),
  );
  assert.deepEqual(result, {
    type: "result",
    id: "c1",
    ok: true,
    value: { $base64: Buffer.from("v1\nhello\n").toString("base64") },
  });
  peer.send({ type: "call", id: "c2", method: "stat", args: [path.join(dir, "nothing")] });
  assert.deepEqual(
    await waitFor("call c2", () => peer.received.find((m) => m.type === "result" && m.id === "c2")),
    {
      type: "result",
      id: "c2",
      ok: true,
      value: null,
    },
  );

  // metrics arrive while connected
  const metrics = await waitFor("metrics", () => peer.received.find((m) => m.type === "metrics"));
  assert.ok(metrics.type === "metrics" && metrics.cpu >= 0 && metrics.cpu <= 100 && metrics.memory > 0);

  // drift runs in report mode: the file changed by hand is drift, the file left alone stays
  await fs.writeFile(target, "edited\n");
  const drift = await waitFor("a drift report", () =>
    [...peer.stored.values()].find((r) => r.status === "drift"),
  );
  assert.equal(drift.kind, "drift");
  assert.equal(drift.mode, "report");
  assert.equal(drift.changed, 1);
  assert.equal(await fs.readFile(target, "utf8"), "edited\n");

  // silence: the server stops every frame; the agent gives up on it and comes back
  const connectsBefore = lines.filter((l) => l.startsWith("connected")).length;
  peer.silent = true;
  await waitFor("lost for silence", () =>
    lines.find((l) => /lost the server: no frame from the server for 3 keepalives/.test(l)),
  );
  peer.silent = false;
  await waitFor("reconnected", () => lines.filter((l) => l.startsWith("connected")).length > connectsBefore);

  // the server goes away: drift runs go on and queue; back on the same port, the queue is delivered once
  const port = peer.port;
  await peer.close();
  await waitFor("lost", () => !agent.connected);
  const queuedWhileDown = await waitFor("two reports queued while the server is down", async () => {
    const pending = await agent.queue.pending();
    return pending.filter((r) => !peer.stored.has(r.seq)).length >= 2 && pending;
  });
  await peer.listen(port);
  await waitFor("queue delivered", async () => agent.connected && (await agent.queue.pending()).length === 0);
  for (const run of queuedWhileDown) assert.deepEqual(peer.stored.get(run.seq), run);
  const seqs = [...peer.stored.keys()].sort((a, b) => a - b);
  assert.deepEqual(
    seqs,
    Array.from({ length: seqs.length }, (_, i) => i + 1),
    "no seq lost",
  );
  assert.equal(peer.duplicates, 0);
  // no re-enrollment: the same key authenticated again
  assert.equal(peer.keys.size, 1);

  await agent.stop();
  assert.equal(agent.connected, false);
});
