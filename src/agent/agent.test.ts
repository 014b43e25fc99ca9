import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import type { ConvergeJob } from "../fleet/agent-protocol.ts";
import type { HostOutcome } from "../fleet/pipeline.ts";
import { tempDir } from "../resources/testing.ts";
import { Agent } from "./agent.ts";
import { readAgentConfig, readAgentKey } from "./config.ts";
import { enrollAgent } from "./enroll.ts";
import { motdBundle, motdJob, Peer, testCertificates } from "./testing.ts";
import { caFingerprint, encodeEnrollmentToken } from "./token.ts";

// The agent against a real HTTPS server and a real WebSocket speaking the server's side of the
// channel protocol (the test's peer, written from the protocol, not Galley's server).

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

test("cancel stops a job and the agent stays; stopping the agent mid-job (SIGTERM) ends the job interrupted, reports it, closes the channel", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "tls"));
  const peer = new Peer(tls);
  await peer.listen();
  t.after(() => peer.close());
  const secret = randomBytes(32).toString("base64url");
  peer.secrets.add(secret);
  const token = encodeEnrollmentToken({ stack: "prod", instance: "web1", secret, ca: caFingerprint(tls.ca) });
  const configFile = path.join(dir, "etc", "agent.json");
  const enrolled = await enrollAgent({ server: peer.url, token, configFile });
  const bundle = await motdBundle(path.join(dir, "kitchen"));
  peer.bundles.set(bundle.id, await fs.readFile(bundle.file));
  const agent = new Agent({
    config: await readAgentConfig(configFile),
    key: (await readAgentKey(enrolled.keyFile))!,
    stateDir: path.join(dir, "agent"),
    hostStateDir: path.join(dir, "host-state"),
    log: () => {},
  });
  t.after(() => agent.stop());
  await agent.start();
  await waitFor("connected", () => agent.connected);
  const target = path.join(dir, "motd");
  const job = motdJob(bundle.id, target, "never");
  job.attributes = [{ ...job.attributes[0]!, values: { motd: { path: target, text: "never", sleep: 120 } } }];
  // cancel: the job stops, the agent stays
  peer.send({ type: "job", id: "cancelled", job });
  await waitFor("the job converging", () =>
    peer.received.some(
      (m) => m.type === "job-phase" && m.id === "cancelled" && m.phase.phase === "converging",
    ),
  );
  peer.send({ type: "cancel", id: "cancelled" });
  const cancelled = await waitFor("job-done", () =>
    peer.received.find((m) => m.type === "job-done" && m.id === "cancelled"),
  );
  assert.ok(cancelled.type === "job-done" && "report" in cancelled.outcome);
  assert.equal(cancelled.outcome.report.status, "interrupted");
  assert.ok(agent.connected);

  peer.send({ type: "job", id: "long", job });
  await waitFor("the job converging", () =>
    peer.received.some((m) => m.type === "job-phase" && m.id === "long" && m.phase.phase === "converging"),
  );
  await agent.stop();
  const done = await waitFor("job-done", () =>
    peer.received.find((m) => m.type === "job-done" && m.id === "long"),
  );
  assert.ok(done.type === "job-done" && "report" in done.outcome);
  assert.equal(done.outcome.report.status, "interrupted");
  await assert.rejects(fs.stat(target), { code: "ENOENT" });
  await waitFor("the channel closed", () => peer.sockets.size === 0);
});
