import assert from "node:assert/strict";
import { test } from "node:test";
import { GalleyError } from "../../core/errors.ts";
import { type ConvergeJob, fromWire, type ServerMessage, toWire } from "../../fleet/agent-protocol.ts";
import type { HostPhase } from "../../fleet/pipeline.ts";
import { enrolled, eventually, startHub, TestAgent } from "./testing.ts";

type JobMessage = Extract<ServerMessage, { type: "job" }>;
type CallMessage = Extract<ServerMessage, { type: "call" }>;

const job: ConvergeJob = {
  bundle: "a".repeat(64),
  runList: ["web::default"],
  attributes: [],
  mode: "apply",
  command: "galley run configure",
  secrets: [],
};
const report = { runList: ["web::default"], resources: [], startedAt: "2026-12-04T01:00:00.000Z" };
const target = { stack: "prod", instance: "web1" };

test("converge: the job reaches the agent, its phases reach onPhase, its job-done is the outcome", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");

  const absent = await fixture.hub.converge(target, job, {});
  assert.equal(absent.status, "unreachable");
  assert.deepEqual(
    absent.status === "unreachable" && absent.error.message,
    "the agent of web1 is not connected",
  );

  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const phases: HostPhase[] = [];
  const running = fixture.hub.converge(target, job, { onPhase: (phase) => phases.push(phase) });
  const sent = await agent.next<JobMessage>((m) => m.type === "job");
  assert.deepEqual(sent.job, job);
  agent.send({ type: "job-phase", id: sent.id, phase: { phase: "compiling" } });
  agent.send({
    type: "job-phase",
    id: sent.id,
    phase: { phase: "converging", done: 1, total: 2, changed: 1, failed: 0 },
  });
  agent.send({ type: "job-done", id: sent.id, outcome: { status: "ok", report, durationMs: 12 } });
  const outcome = await running;
  assert.deepEqual(outcome, { status: "ok", report, durationMs: 12 });
  assert.deepEqual(phases, [
    { phase: "compiling" },
    { phase: "converging", done: 1, total: 2, changed: 1, failed: 0 },
  ]);
  // a late answer for a finished job of its own is dropped, not refused
  agent.send({ type: "job-done", id: sent.id, outcome: { status: "ok", report, durationMs: 12 } });

  // lost mid-job: unreachable
  const second = fixture.hub.converge(target, job, {});
  await agent.next<JobMessage>((m) => m.type === "job" && m.id !== sent.id);
  agent.ws.close(1000);
  const cut = await second;
  assert.equal(cut.status, "unreachable");
  assert.match(cut.status === "unreachable" ? cut.error.message : "", /the agent of web1 was lost: closed/);
});

test("converge: an abort sends cancel and the agent's answer ends the job; no answer in 5 s is unreachable", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const abort = new AbortController();
  const running = fixture.hub.converge(target, job, { signal: abort.signal });
  const sent = await agent.next<JobMessage>((m) => m.type === "job");
  abort.abort();
  const cancel = await agent.next((m) => m.type === "cancel");
  assert.deepEqual(cancel, { type: "cancel", id: sent.id });
  const interrupted = { code: "INTERRUPTED", message: "the job was cancelled" };
  agent.send({
    type: "job-done",
    id: sent.id,
    outcome: { status: "failed", error: interrupted, durationMs: 3 },
  });
  assert.deepEqual(await running, { status: "failed", error: interrupted, durationMs: 3 });

  const silent = new AbortController();
  const ignored = fixture.hub.converge(target, job, { signal: silent.signal });
  await agent.next<JobMessage>((m) => m.type === "job" && m.id !== sent.id);
  silent.abort();
  const outcome = await ignored;
  assert.equal(outcome.status, "unreachable");
  assert.match(outcome.status === "unreachable" ? outcome.error.message : "", /did not answer the cancel/);
});

test("connect: exec, readFile, writeFile, stat and facts are calls answered by results; a lost agent fails them", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  await assert.rejects(
    fixture.hub.connect(target),
    (e) => e instanceof GalleyError && e.code === "HOST_UNREACHABLE",
  );
  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const calls: CallMessage[] = [];
  // the agent's side: answer each call from a tiny in-memory machine
  const files = new Map<string, Uint8Array>([["/etc/motd", new TextEncoder().encode("hello\n")]]);
  agent.ws.on("message", (data) => {
    const message = JSON.parse(String(data)) as ServerMessage;
    if (message.type !== "call") return;
    calls.push(message);
    const args = fromWire(message.args) as unknown[];
    const answer = (value: unknown) =>
      agent.send({ type: "result", id: message.id, ok: true, value: toWire(value) });
    if (message.method === "exec") {
      const argv = args[0] as string[];
      answer({ argv, exitCode: 0, stdout: argv.join(" "), stderr: "", timedOut: false, durationMs: 1 });
    } else if (message.method === "readFile") answer(files.get(args[0] as string));
    else if (message.method === "writeFile") {
      files.set(args[0] as string, args[1] as Uint8Array);
      answer(undefined);
    } else if (message.method === "stat") {
      agent.send({
        type: "result",
        id: message.id,
        ok: false,
        error: { code: "FILE_NOT_FOUND", message: "no", hint: "h" },
      });
    } else answer({ hostname: "web1" });
  });
  const host = await fixture.hub.connect(target);
  assert.equal(host.name, "web1");
  const result = await host.exec(["echo", "hi"], { input: new Uint8Array([1, 2, 3]) });
  assert.equal(result.stdout, "echo hi");
  assert.deepEqual(calls[0]?.args, [["echo", "hi"], { input: { $base64: "AQID" } }]);
  assert.equal(new TextDecoder().decode(await host.readFile("/etc/motd")), "hello\n");
  assert.equal(await host.readFile("/nope"), undefined);
  await host.writeFile("/bin/blob", new Uint8Array([0, 255, 7]), { mode: 0o644 });
  assert.deepEqual([...(files.get("/bin/blob") ?? [])], [0, 255, 7]);
  await assert.rejects(
    host.stat("/x"),
    (e) => e instanceof GalleyError && e.code === "FILE_NOT_FOUND" && e.hint === "h",
  );
  assert.deepEqual(await host.facts(), { hostname: "web1" });

  // lost: the host says so, every later call fails with it
  agent.ws.close(1000);
  await eventually(() => host.lost !== undefined, "the host marked lost");
  assert.equal(host.lost?.code, "HOST_UNREACHABLE");
  await assert.rejects(host.facts(), /the agent of web1 was lost: closed/);
  await host.close();
});

test("a report is stored once and acknowledged each time it is sent; metrics are stored", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const run = {
    seq: 7,
    kind: "drift",
    mode: "report",
    status: "drift",
    changed: 2,
    failed: 0,
    startedAt: "2026-12-04T01:00:00.000Z",
    finishedAt: "2026-12-04T01:00:05.000Z",
  };
  agent.send({ type: "report", run });
  await agent.next((m) => m.type === "ack" && m.seq === 7);
  const acks = () => agent.received.filter((m) => m.type === "ack").length;
  agent.send({ type: "report", run });
  await eventually(() => acks() === 2, "a second ack");
  const runs = await fixture.store.listAgentRuns("prod", "web1");
  assert.equal(runs.length, 1);
  assert.equal(runs[0]?.seq, 7);
  assert.equal(runs[0]?.status, "drift");
  assert.equal(runs[0]?.generation, 1);

  const at = new Date().toISOString();
  agent.send({ type: "metrics", at, cpu: 12.5, memory: 40, load: 0.3 });
  await eventually(
    async () => (await fixture.store.metricsSince("prod", "2000-01-01T00:00:00.000Z")).length === 1,
    "metrics",
  );
  const [sample] = await fixture.store.metricsSince("prod", "2000-01-01T00:00:00.000Z");
  assert.deepEqual(sample, { stack: "prod", instance: "web1", at, cpu: 12.5, memory: 40, load: 0.3 });
});

test("a phase listener that throws is logged; the job still ends with the agent's outcome", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const running = fixture.hub.converge(target, job, {
    onPhase: () => {
      throw new Error("listener bug");
    },
  });
  const sent = await agent.next<JobMessage>((m) => m.type === "job");
  agent.send({ type: "job-phase", id: sent.id, phase: { phase: "facts" } });
  agent.send({
    type: "job-done",
    id: sent.id,
    outcome: { status: "skipped", reason: "nothing to do", durationMs: 0 },
  });
  assert.deepEqual(await running, { status: "skipped", reason: "nothing to do", durationMs: 0 });
  assert.ok(fixture.logs.some((line) => /phase listener failed: listener bug/.test(line)));
  assert.ok(fixture.hub.connected(target));
});
