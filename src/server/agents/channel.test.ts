import assert from "node:assert/strict";
import { test } from "node:test";
import type { ServerMessage } from "../../fleet/agent-protocol.ts";
import type { AuditRecord, Store } from "../../store/store.ts";
import { agentKey, enrolled, eventually, startHub, TestAgent } from "./testing.ts";

type Refused = Extract<ServerMessage, { type: "refused" }>;

async function refusals(store: Store) {
  return store.listAudit({ outcome: "refused" });
}

test("an enrolled agent authenticates: welcome with the settings, a connection, an event and an audit entry", async (t) => {
  const fixture = await startHub({ keepaliveMs: 5000, runMode: "report" });
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const connected: string[] = [];
  fixture.hub.on("connected", (target) => connected.push(`${target.stack}/${target.instance}`));
  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => agent.close());
  const welcome = await agent.next((m) => m.type === "welcome");
  assert.equal(welcome.type, "welcome");
  if (welcome.type !== "welcome") return;
  assert.match(welcome.session, /^[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(
    { ...welcome, session: "" },
    {
      type: "welcome",
      session: "",
      keepaliveMs: 5000,
      runIntervalMs: 60_000,
      splayMs: 1000,
      runMode: "report",
      metricsMs: 60_000,
    },
  );
  assert.deepEqual(connected, ["prod/web1"]);
  assert.equal(fixture.hub.connected({ stack: "prod", instance: "web1" }), true);
  assert.equal(fixture.hub.connected({ stack: "prod", instance: "web2" }), false);
  const [connection] = fixture.hub.connections();
  assert.equal(connection?.instance, "web1");
  assert.equal(connection?.generation, 1);
  assert.equal(connection?.remote, "127.0.0.1");
  assert.deepEqual(fixture.hub.agentForSession(welcome.session), { stack: "prod", instance: "web1" });
  assert.equal(fixture.hub.agentForSession("nope"), undefined);
  await eventually(
    async () => (await fixture.store.getAgent("prod", "web1"))?.lastSeenAt !== undefined,
    "last seen recorded",
  );
  const audit = await fixture.store.listAudit({ stack: "prod" });
  assert.ok(
    audit.some((a) => a.action === "agent.connect" && a.outcome === "ok" && a.actor === "agent:prod/web1"),
  );
});

test("refused and audited: a bad signature, an unknown instance, a replayed auth, another instance's name, a broken frame", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  await enrolled(fixture.store, "prod", "web2");

  // signed with a key that is not the enrolled one
  const wrong = await TestAgent.connect(fixture, "prod", "web1", agentKey().privateKey);
  const refused = await wrong.next<Refused>((m) => m.type === "refused");
  assert.equal(refused.error.code, "AGENT_AUTH_FAILED");
  assert.match(refused.error.message, /signature of prod\/web1 does not match/);
  assert.equal((await wrong.closed).code, 1008);

  // an instance nobody enrolled
  const unknown = await TestAgent.connect(fixture, "prod", "db9", key.privateKey);
  assert.match(
    (await unknown.next<Refused>((m) => m.type === "refused")).error.message,
    /no agent is enrolled for prod\/db9/,
  );
  await unknown.closed;

  // an auth captured from one connection, replayed on another: it signed the other nonce
  const first = await TestAgent.open(fixture);
  const captured = await first.auth("prod", "web1", key.privateKey);
  await first.next((m) => m.type === "welcome");
  first.close();
  const replay = await TestAgent.open(fixture);
  await replay.next((m) => m.type === "hello");
  replay.send(captured);
  assert.match(
    (await replay.next<Refused>((m) => m.type === "refused")).error.message,
    /does not match this connection's nonce/,
  );
  await replay.closed;

  // an authenticated agent speaking for another instance
  const other = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  other.send({ type: "auth", stack: "prod", instance: "web2", signature: "AAAA", agent: "x" });
  assert.match(
    (await other.next<Refused>((m) => m.type === "refused")).error.message,
    /naming another instance \(prod\/web2\)/,
  );
  await other.closed;

  // a second auth on the same connection: its nonce is spent
  const twice = await TestAgent.open(fixture);
  const again = await twice.auth("prod", "web1", key.privateKey);
  await twice.next((m) => m.type === "welcome");
  twice.send(again);
  assert.match(
    (await twice.next<Refused>((m) => m.type === "refused")).error.message,
    /nonce was already used/,
  );
  await twice.closed;

  // frames that are not the protocol
  for (const [frame, reason] of [
    ["{not json", /not JSON/],
    [JSON.stringify({ type: "launch-missiles" }), /breaks the protocol/],
    [
      JSON.stringify({ type: "metrics", at: "now", cpu: 500, memory: 1, load: 0 }),
      /"metrics" message that breaks the protocol/,
    ],
    [JSON.stringify({ type: "keepalive", seq: 1 }), /"keepalive" message before auth/],
  ] as const) {
    const broken = await TestAgent.open(fixture);
    await broken.next((m) => m.type === "hello");
    broken.send(frame);
    assert.match((await broken.next<Refused>((m) => m.type === "refused")).error.message, reason);
    await broken.closed;
  }
  const job = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  job.send({
    type: "job-done",
    id: "not-a-job-of-mine",
    outcome: { status: "skipped", reason: "x", durationMs: 0 },
  });
  assert.match((await job.next<Refused>((m) => m.type === "refused")).error.message, /not one of its own/);
  await job.closed;

  let audited: AuditRecord[] = [];
  await eventually(async () => {
    audited = await refusals(fixture.store);
    return audited.length >= 10;
  }, "ten refusals in the audit log");
  const reasons = audited.map((a) => `${a.actor}: ${a.reason}`);
  assert.ok(
    reasons.some((r) => /^anonymous: the signature of prod\/web1/.test(r)),
    reasons.join("\n"),
  );
  assert.ok(reasons.some((r) => /^anonymous: no agent is enrolled for prod\/db9/.test(r)));
  assert.ok(reasons.some((r) => /^agent:prod\/web1: an auth naming another instance/.test(r)));
  assert.ok(reasons.some((r) => /^agent:prod\/web1: a "job-done" for job not-a-job-of-mine/.test(r)));
  assert.ok(reasons.every((r) => r.includes("(from 127.0.0.1)")));
  assert.equal(fixture.hub.connected({ stack: "prod", instance: "web1" }), false);
});

test("an agent silent for three keepalives is lost; a closed one is lost with 'closed'", async (t) => {
  const fixture = await startHub({ keepaliveMs: 100, missedKeepalives: 3 });
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const lost: string[] = [];
  fixture.hub.on("lost", (target, reason) => lost.push(`${target.instance}: ${reason}`));
  // answers nothing after auth (ws answers pings by itself, but only frames count)
  const silent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  await silent.next((m) => m.type === "keepalive");
  await silent.closed;
  await eventually(() => lost.length === 1, "a lost event");
  assert.deepEqual(lost, ["web1: missed 3 keepalives"]);
  assert.equal(fixture.hub.connected({ stack: "prod", instance: "web1" }), false);

  // one that keeps talking stays, then closes
  const talking = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  let seq = 0;
  const beat = setInterval(() => talking.send({ type: "keepalive", seq: ++seq }), 50);
  t.after(() => clearInterval(beat));
  await eventually(
    () => talking.received.filter((m) => m.type === "keepalive").length >= 6,
    "six keepalives from the server",
  );
  assert.equal(fixture.hub.connected({ stack: "prod", instance: "web1" }), true);
  clearInterval(beat);
  talking.ws.close(1000);
  await eventually(() => lost.length === 2, "a second lost event");
  assert.equal(lost[1], "web1: closed");
});

test("a second connection of the same instance replaces the first; other paths get 404", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const lost: string[] = [];
  fixture.hub.on("lost", (_target, reason) => lost.push(reason));
  const first = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  const second = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  t.after(() => second.close());
  assert.equal((await first.closed).code, 4000);
  assert.equal(fixture.hub.connections().length, 1);
  assert.equal(fixture.hub.connected({ stack: "prod", instance: "web1" }), true);
  assert.deepEqual(lost, []);
  await assert.rejects(TestAgent.open(fixture, fixture.channelUrl.replace("/channel", "/other")), /HTTP 404/);
});

test("a connection that does not authenticate in time, and a frame over 16 MiB, are cut off and audited", async (t) => {
  const fixture = await startHub({}, { authTimeoutMs: 200 });
  t.after(() => fixture.close());
  const key = await enrolled(fixture.store, "prod", "web1");
  const mute = await TestAgent.open(fixture);
  assert.match((await mute.next<Refused>((m) => m.type === "refused")).error.message, /no auth within/);
  await mute.closed;

  const agent = await TestAgent.connect(fixture, "prod", "web1", key.privateKey);
  agent.send({
    type: "metrics",
    at: new Date().toISOString(),
    cpu: 1,
    memory: 1,
    load: 0,
    pad: "x".repeat(17 * 1024 * 1024),
  });
  assert.equal((await agent.closed).code, 1009);
  await eventually(
    async () =>
      (await fixture.store.listAudit({ outcome: "refused" })).some((a) =>
        /a frame larger than/.test(a.reason ?? ""),
      ),
    "the oversized frame audited",
  );
  await eventually(() => !fixture.hub.connected({ stack: "prod", instance: "web1" }), "the agent dropped");
});
