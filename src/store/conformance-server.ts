// The Store contract for the server and its agents: admin tokens, one-time enrollments, agents and
// their generations, agent run reports (idempotent by seq), metrics, the audit log and leases. Part
// of the conformance suite (storeConformance registers it). Only the Store interface is used.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { registerSecrets } from "../core/secrets.ts";
import type { StoreOpener } from "./conformance.ts";
import type { AgentRunInput, Store } from "./store.ts";

const stateInvalid = (pattern: RegExp) => (error: unknown) =>
  error instanceof GalleyError && error.code === "STATE_INVALID" && pattern.test(error.message);

/** sha256 hex of a fresh secret, as the server keeps it. */
export function secretHash(secret = randomBytes(32).toString("base64url")): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** An agent run report of web/app1 (generation 1), with what a caller may change. */
export function agentRun(overrides: Partial<AgentRunInput> = {}): AgentRunInput {
  return {
    stack: "web",
    instance: "app1",
    generation: 1,
    seq: 1,
    kind: "drift",
    mode: "enforce",
    bundle: "b".repeat(64),
    status: "ok",
    changed: 0,
    failed: 0,
    report: { resources: 3 },
    startedAt: "2026-12-04T01:00:00.000Z",
    finishedAt: "2026-12-04T01:00:05.000Z",
    ...overrides,
  };
}

const key = (n: number) =>
  `-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA${String(n).repeat(43).slice(0, 43)}=\n-----END PUBLIC KEY-----\n`;

/** Registers the server part of the Store conformance tests under `name`. */
export function serverConformance(name: string, opener: StoreOpener): void {
  const it = (title: string, fn: (store: Store) => Promise<void>) =>
    test(`${name} store: ${title}`, async () => {
      const store = await opener.fresh();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  /** `fn` with the fresh store and a second connection to it (as another process would open it). */
  const both = (title: string, fn: (store: Store, other: Store) => Promise<void>) =>
    test(`${name} store: ${title}`, async () => {
      const store = await opener.fresh();
      const other = await opener.again();
      try {
        await fn(store, other);
      } finally {
        await other.close();
        await store.close();
      }
    });

  it("tokens: created with grants, found by hash (revoked and expired too), touched, listed, revoked", async (store) => {
    const hash = secretHash();
    assert.equal(await store.tokenByHash(hash), undefined);
    const ci = await store.createToken({
      name: "ci",
      grants: [
        { stack: "web", role: "deployer" },
        { stack: "*", role: "viewer" },
      ],
      hash,
    });
    assert.equal(typeof ci.id, "string");
    assert.ok(ci.id.length > 0);
    assert.deepEqual(ci, {
      id: ci.id,
      name: "ci",
      grants: [
        { stack: "web", role: "deployer" },
        { stack: "*", role: "viewer" },
      ],
      createdAt: ci.createdAt,
    });
    assert.ok(!Number.isNaN(Date.parse(ci.createdAt)));
    const expired = await store.createToken({
      name: "old",
      grants: [{ stack: "*", role: "admin" }],
      expiresAt: "2020-01-01T00:00:00.000Z",
      hash: secretHash(),
    });
    assert.equal(expired.expiresAt, "2020-01-01T00:00:00.000Z");
    assert.notEqual(expired.id, ci.id);
    assert.deepEqual(await store.tokenByHash(hash), ci);
    await store.touchToken(ci.id, "2026-12-04T01:02:03.000Z");
    assert.equal((await store.tokenByHash(hash))?.lastUsedAt, "2026-12-04T01:02:03.000Z");
    assert.deepEqual(
      (await store.listTokens()).map((token) => token.name),
      ["ci", "old"],
    );
    const revoked = await store.revokeToken(ci.id);
    assert.ok(revoked.revokedAt !== undefined && !Number.isNaN(Date.parse(revoked.revokedAt)));
    // found still, so the caller can say it was revoked; revoking again keeps the first time
    assert.equal((await store.tokenByHash(hash))?.revokedAt, revoked.revokedAt);
    assert.equal((await store.revokeToken(ci.id)).revokedAt, revoked.revokedAt);
    await assert.rejects(store.revokeToken("nope"), stateInvalid(/no token nope/));
    await assert.rejects(store.touchToken("nope", "2026-12-04T01:02:03.000Z"), stateInvalid(/no token/));
    // a secret is not a hash: refused, so no secret is ever stored by mistake
    await assert.rejects(
      store.createToken({ name: "x", grants: [], hash: "hunter22-the-secret" }),
      stateInvalid(/sha256/),
    );
    await assert.rejects(
      store.createToken({
        name: "x",
        grants: [{ stack: "web", role: "owner" as "admin" }],
        hash: secretHash(),
      }),
      stateInvalid(/owner/),
    );
    await assert.rejects(store.createToken({ name: "again", grants: [], hash }), stateInvalid(/already/));
  });

  both("a one-time enrollment is consumed once, even by two connections at once", async (store, other) => {
    const hash = secretHash();
    const later = new Date(Date.now() + 3_600_000).toISOString();
    await store.createEnrollment({ stack: "web", instance: "app1", hash, expiresAt: later });
    const at = new Date().toISOString();
    const results = await Promise.all([
      store.consumeEnrollment(hash, at),
      other.consumeEnrollment(hash, at),
      other.consumeEnrollment(hash, at),
      store.consumeEnrollment(hash, at),
    ]);
    assert.deepEqual(
      results.filter((result) => result !== undefined),
      [{ stack: "web", instance: "app1" }],
    );
    assert.equal(await store.consumeEnrollment(hash, at), undefined);
    assert.equal(await other.consumeEnrollment(secretHash(), at), undefined, "an unknown hash");
  });

  it("an expired enrollment is refused; a new one replaces the instance's unused one", async (store) => {
    const expired = secretHash();
    await store.createEnrollment({
      stack: "web",
      instance: "app1",
      hash: expired,
      expiresAt: "2026-12-04T01:00:00.000Z",
    });
    assert.equal(await store.consumeEnrollment(expired, "2026-12-04T01:00:00.000Z"), undefined, "at expiry");
    assert.equal(await store.consumeEnrollment(expired, "2026-12-05T00:00:00.000Z"), undefined);
    const first = secretHash();
    const second = secretHash();
    const elsewhere = secretHash();
    const later = "2027-01-01T00:00:00.000Z";
    await store.createEnrollment({ stack: "web", instance: "app2", hash: first, expiresAt: later });
    await store.createEnrollment({ stack: "web", instance: "app3", hash: elsewhere, expiresAt: later });
    await store.createEnrollment({ stack: "web", instance: "app2", hash: second, expiresAt: later });
    const at = "2026-12-04T02:00:00.000Z";
    assert.equal(await store.consumeEnrollment(first, at), undefined, "replaced");
    assert.deepEqual(await store.consumeEnrollment(second, at), { stack: "web", instance: "app2" });
    assert.deepEqual(await store.consumeEnrollment(elsewhere, at), { stack: "web", instance: "app3" });
    // a used secret is never armed again
    await assert.rejects(
      store.createEnrollment({ stack: "web", instance: "app2", hash: second, expiresAt: later }),
      stateInvalid(/already exists/),
    );
    assert.equal(await store.consumeEnrollment(second, at), undefined);
    await assert.rejects(
      store.createEnrollment({ stack: "web", instance: "app4", hash: secretHash(), expiresAt: "soon" }),
      stateInvalid(/not a time/),
    );
  });

  both(
    "an agent's key: registered at generation 1, a re-enrollment replaces it and bumps the generation",
    async (store, other) => {
      assert.equal(await store.getAgent("web", "app1"), undefined);
      const first = await store.registerAgent({ stack: "web", instance: "app1", publicKey: key(1) });
      assert.deepEqual(first, {
        stack: "web",
        instance: "app1",
        publicKey: key(1),
        generation: 1,
        enrolledAt: first.enrolledAt,
      });
      await store.agentSeen("web", "app1", "2026-12-04T01:05:00.000Z");
      assert.equal((await other.getAgent("web", "app1"))?.lastSeenAt, "2026-12-04T01:05:00.000Z");
      const again = await other.registerAgent({ stack: "web", instance: "app1", publicKey: key(2) });
      assert.equal(again.generation, 2);
      assert.equal(again.publicKey, key(2));
      assert.ok(!("lastSeenAt" in again), "the new key has not been seen yet");
      assert.deepEqual(await store.getAgent("web", "app1"), again);
      await store.registerAgent({ stack: "web", instance: "app0", publicKey: key(3) });
      await store.registerAgent({ stack: "db", instance: "db1", publicKey: key(4) });
      assert.deepEqual(
        (await store.listAgents()).map((agent) => `${agent.stack}/${agent.instance}@${agent.generation}`),
        ["db/db1@1", "web/app0@1", "web/app1@2"],
      );
      assert.deepEqual(
        (await store.listAgents("web")).map((agent) => agent.instance),
        ["app0", "app1"],
      );
      await assert.rejects(
        store.agentSeen("web", "nope", "2026-12-04T01:05:00.000Z"),
        stateInvalid(/no agent enrolled for web\/nope/),
      );
    },
  );

  it("agent runs: recorded once by (stack, instance, generation, seq), newest first", async (store) => {
    assert.equal(await store.recordAgentRun(agentRun({ seq: 1 })), "recorded");
    assert.equal(await store.recordAgentRun(agentRun({ seq: 1, status: "failed" })), "duplicate");
    assert.equal(await store.recordAgentRun(agentRun({ seq: 2, status: "drift", changed: 2 })), "recorded");
    // the same seq of a new enrollment, or of another instance, is another run
    assert.equal(await store.recordAgentRun(agentRun({ seq: 1, generation: 2 })), "recorded");
    assert.equal(await store.recordAgentRun(agentRun({ seq: 1, instance: "app2" })), "recorded");
    const runs = await store.listAgentRuns("web", "app1");
    assert.deepEqual(
      runs.map((run) => [run.generation, run.seq, run.status]),
      [
        [2, 1, "ok"],
        [1, 2, "drift"],
        [1, 1, "ok"],
      ],
    );
    const { receivedAt, ...stored } = runs[2]!;
    assert.deepEqual(stored, agentRun({ seq: 1 }));
    assert.ok(!Number.isNaN(Date.parse(receivedAt)));
    assert.equal((await store.listAgentRuns("web", "app1", { limit: 1 })).length, 1);
    assert.deepEqual(await store.listAgentRuns("web", "nope"), []);
    const bare = agentRun({ seq: 3, kind: "job", mode: "report" });
    delete bare.bundle;
    delete bare.report;
    await store.recordAgentRun(bare);
    const [newest] = await store.listAgentRuns("web", "app1", { limit: 1 });
    assert.ok(!("bundle" in newest!) && !("report" in newest!));
    await assert.rejects(
      store.recordAgentRun(agentRun({ seq: 9, status: "weird" as "ok" })),
      stateInvalid(/weird/),
    );
  });

  both(
    "agent runs: a duplicate is a duplicate across connections and after a reopen",
    async (store, other) => {
      assert.equal(await store.recordAgentRun(agentRun({ seq: 7 })), "recorded");
      assert.equal(await other.recordAgentRun(agentRun({ seq: 7 })), "duplicate");
      await other.close();
      const reopened = await opener.again();
      try {
        assert.equal(await reopened.recordAgentRun(agentRun({ seq: 7 })), "duplicate");
        assert.equal(await reopened.recordAgentRun(agentRun({ seq: 8 })), "recorded");
        assert.equal((await reopened.listAgentRuns("web", "app1")).length, 2);
      } finally {
        await reopened.close();
      }
    },
  );

  it("metrics: a stack's samples since a time, oldest first", async (store) => {
    const sample = (instance: string, at: string, cpu: number) => ({
      stack: "web",
      instance,
      at,
      cpu,
      memory: 40.5,
      load: 0.25,
    });
    const base = Date.now() - 60 * 60_000;
    const at = (minutes: number) => new Date(base + minutes * 60_000).toISOString();
    await store.recordMetrics(sample("app1", at(2), 20));
    await store.recordMetrics(sample("app2", at(1), 10));
    await store.recordMetrics(sample("app1", at(3), 30));
    await store.recordMetrics({ ...sample("db1", at(3), 99), stack: "db" });
    assert.deepEqual(
      (await store.metricsSince("web", at(0))).map((each) => [each.instance, each.cpu]),
      [
        ["app2", 10],
        ["app1", 20],
        ["app1", 30],
      ],
    );
    assert.deepEqual(await store.metricsSince("web", at(2)), [
      sample("app1", at(2), 20),
      sample("app1", at(3), 30),
    ]);
    assert.deepEqual(await store.metricsSince("web", at(4)), []);
    await assert.rejects(store.recordMetrics(sample("app1", at(5), Number.NaN)), stateInvalid(/cpu/));
  });

  it("audit: appended with increasing ids, listed newest first, filtered by stack and outcome", async (store) => {
    const deploy = await store.appendAudit({
      actor: "token:ci",
      action: "deploy",
      stack: "web",
      target: "hello",
      outcome: "ok",
      detail: { revision: "main" },
    });
    assert.deepEqual(deploy, {
      id: deploy.id,
      at: deploy.at,
      actor: "token:ci",
      action: "deploy",
      stack: "web",
      target: "hello",
      outcome: "ok",
      detail: { revision: "main" },
    });
    const refused = await store.appendAudit({
      actor: "token:viewer",
      action: "instance.start",
      stack: "web",
      target: "app1",
      outcome: "refused",
      reason: "viewer on web may not start instances",
    });
    const auth = await store.appendAudit({
      actor: "anonymous",
      action: "auth",
      outcome: "refused",
      reason: "bad token",
    });
    const healed = await store.appendAudit({
      actor: "system:healer",
      action: "instance.replace",
      stack: "db",
      target: "db1",
      outcome: "auto",
      reason: "silent for 3 keepalives",
    });
    assert.ok(deploy.id < refused.id && refused.id < auth.id && auth.id < healed.id);
    assert.ok(!("stack" in auth) && !("detail" in auth) && !("target" in auth));
    assert.deepEqual(
      (await store.listAudit()).map((entry) => entry.id),
      [healed.id, auth.id, refused.id, deploy.id],
    );
    assert.deepEqual(
      (await store.listAudit({ stack: "web" })).map((entry) => entry.id),
      [refused.id, deploy.id],
    );
    assert.deepEqual(
      (await store.listAudit({ outcome: "refused" })).map((entry) => entry.id),
      [auth.id, refused.id],
    );
    assert.deepEqual(
      (await store.listAudit({ stack: "web", outcome: "refused" })).map((entry) => entry.id),
      [refused.id],
    );
    assert.deepEqual(
      (await store.listAudit({ limit: 2 })).map((entry) => entry.id),
      [healed.id, auth.id],
    );
    assert.deepEqual(await store.listAudit({ stack: "nope" }), []);
    await assert.rejects(
      store.appendAudit({ actor: "x", action: "y", outcome: "maybe" as "ok" }),
      stateInvalid(/maybe/),
    );
  });

  both(
    "leases: one holder of two connections; renewed by its holder; taken when expired; released",
    async (store, other) => {
      const t0 = new Date("2026-12-04T01:00:00.000Z");
      const at = (ms: number) => new Date(t0.getTime() + ms);
      const [a, b] = await Promise.all([
        store.acquireLease("scheduler", "server-a", 60_000, t0),
        other.acquireLease("scheduler", "server-b", 60_000, t0),
      ]);
      assert.equal(a, true);
      assert.equal(b, false);
      // renewed by its holder: it lasts from the renewal on
      assert.equal(await store.acquireLease("scheduler", "server-a", 60_000, at(50_000)), true);
      assert.equal(await other.acquireLease("scheduler", "server-b", 60_000, at(70_000)), false, "renewed");
      // another lease is independent
      assert.equal(await other.acquireLease("healer", "server-b", 60_000, at(70_000)), true);
      // expired: the other takes it, and the first holder lost it
      assert.equal(await other.acquireLease("scheduler", "server-b", 60_000, at(110_000)), true);
      assert.equal(await store.acquireLease("scheduler", "server-a", 60_000, at(111_000)), false);
      // releasing another's lease does nothing; the holder's release frees it at once
      await store.releaseLease("scheduler", "server-a");
      assert.equal(await store.acquireLease("scheduler", "server-a", 60_000, at(112_000)), false);
      await other.releaseLease("scheduler", "server-b");
      assert.equal(await store.acquireLease("scheduler", "server-a", 60_000, at(113_000)), true);
      // without a time: now
      assert.equal(await other.acquireLease("now", "server-b", 60_000), true);
      assert.equal(await store.acquireLease("now", "server-a", 60_000), false);
    },
  );

  it("the server's writes belong to a transaction: a failed one leaves no audit entry, run or agent", async (store) => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.appendAudit({ actor: "token:ci", action: "deploy", stack: "web", outcome: "ok" });
        await tx.recordAgentRun(agentRun());
        await tx.registerAgent({ stack: "web", instance: "app1", publicKey: key(1) });
        assert.equal(await tx.acquireLease("scheduler", "a", 60_000), true);
        throw new Error("the deployment could not start");
      }),
      /could not start/,
    );
    assert.deepEqual(await store.listAudit(), []);
    assert.deepEqual(await store.listAgentRuns("web", "app1"), []);
    assert.equal(await store.getAgent("web", "app1"), undefined);
    assert.equal(await store.acquireLease("scheduler", "b", 60_000), true, "the lease was never taken");
    const entry = await store.transaction(async (tx) =>
      tx.appendAudit({ actor: "token:ci", action: "deploy", stack: "web", outcome: "ok" }),
    );
    assert.deepEqual(
      (await store.listAudit()).map((each) => each.id),
      [entry.id],
    );
  });

  it("a registered secret never reaches audit entries, agent run reports or token names", async (store) => {
    const secret = `pw-${randomBytes(12).toString("hex")}`;
    registerSecrets([secret]);
    await store.appendAudit({
      actor: "token:ci",
      action: "deploy",
      stack: "web",
      target: `app ${secret}`,
      outcome: "refused",
      reason: `bad password ${secret}`,
      detail: { attributes: { db: { password: secret } }, [secret]: [secret] },
    });
    await store.recordAgentRun(agentRun({ report: { log: `echo ${secret}`, nested: [{ value: secret }] } }));
    await store.createToken({ name: `ci ${secret}`, grants: [], hash: secretHash() });
    const [entry] = await store.listAudit();
    assert.equal(entry?.reason, "bad password (sensitive)");
    assert.deepEqual(entry?.detail, {
      attributes: { db: { password: "(sensitive)" } },
      "(sensitive)": ["(sensitive)"],
    });
    const everything = JSON.stringify([
      await store.listAudit(),
      await store.listAgentRuns("web", "app1"),
      await store.listTokens(),
    ]);
    assert.ok(!everything.includes(secret), everything);
    assert.ok(everything.includes("(sensitive)"));
  });
}
