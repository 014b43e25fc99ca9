import assert from "node:assert/strict";
import { test } from "node:test";
import { GalleyError } from "../../core/errors.ts";
import type { ServerMessage } from "../../fleet/agent-protocol.ts";
import { decodeEnrollment, encodeEnrollment, enrollAgent, mintEnrollment, secretHash } from "./enrollment.ts";
import { agentKey, startHub, TestAgent } from "./testing.ts";

const ca = "c".repeat(64);
const refused = (pattern: RegExp) => (error: unknown) =>
  error instanceof GalleyError && error.code === "ENROLL_REFUSED" && pattern.test(error.message);

test("a minted token has the brief's format and only its secret's hash is stored", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const token = await mintEnrollment(fixture.store, {
    stack: "prod",
    instance: "web1",
    caFingerprint: ca,
    ttlMs: 60_000,
  });
  assert.match(token, /^gle1_[A-Za-z0-9_-]+$/);
  const json = JSON.parse(Buffer.from(token.slice(5), "base64url").toString("utf8"));
  assert.deepEqual(Object.keys(json), ["s", "i", "k", "ca"]);
  assert.equal(json.s, "prod");
  assert.equal(json.i, "web1");
  assert.equal(json.ca, ca);
  assert.equal(Buffer.from(json.k, "base64url").length, 32);
  assert.deepEqual(decodeEnrollment(token), { stack: "prod", instance: "web1", secret: json.k, ca });
  const claimed = await fixture.store.consumeEnrollment(secretHash(json.k), new Date().toISOString());
  assert.deepEqual(claimed, { stack: "prod", instance: "web1" });
  for (const bad of [
    "",
    "gle1_",
    "gle1_!!!",
    `gle1_${Buffer.from("[]").toString("base64url")}`,
    token.replace("gle1_", "gle2_"),
  ]) {
    assert.throws(() => decodeEnrollment(bad), refused(/not a Galley enrollment token/));
  }
});

test("enrollment: once per token; used, expired, forged, other CA and non-ed25519 keys refused; re-enrollment bumps the generation and retires the old key", async (t) => {
  const fixture = await startHub();
  t.after(() => fixture.close());
  const { store } = fixture;
  const first = agentKey();
  const token = await mintEnrollment(store, {
    stack: "prod",
    instance: "web1",
    caFingerprint: ca,
    ttlMs: 60_000,
  });
  assert.deepEqual(await enrollAgent(store, { token, publicKey: first.publicKey }, ca), {
    stack: "prod",
    instance: "web1",
    generation: 1,
  });
  await assert.rejects(
    enrollAgent(store, { token, publicKey: first.publicKey }, ca),
    refused(/used, expired or unknown/),
  );

  const expired = await mintEnrollment(store, {
    stack: "prod",
    instance: "web2",
    caFingerprint: ca,
    ttlMs: 1000,
    now: new Date(Date.now() - 60_000),
  });
  await assert.rejects(
    enrollAgent(store, { token: expired, publicKey: first.publicKey }, ca),
    refused(/used, expired/),
  );
  const forged = encodeEnrollment({ stack: "prod", instance: "web2", secret: "A".repeat(43), ca });
  await assert.rejects(
    enrollAgent(store, { token: forged, publicKey: first.publicKey }, ca),
    refused(/used, expired/),
  );
  const fresh = await mintEnrollment(store, {
    stack: "prod",
    instance: "web2",
    caFingerprint: ca,
    ttlMs: 60_000,
  });
  await assert.rejects(
    enrollAgent(store, { token: fresh, publicKey: first.publicKey }, "d".repeat(64)),
    refused(/another Galley server/),
  );
  const rsa = (await import("node:crypto")).generateKeyPairSync("rsa", { modulusLength: 1024 });
  const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }).toString();
  await assert.rejects(
    enrollAgent(store, { token: fresh, publicKey: rsaPem }, ca),
    refused(/not an ed25519/),
  );
  // the refusals above spent nothing: the fresh token still works
  assert.equal((await enrollAgent(store, { token: fresh, publicKey: first.publicKey }, ca)).instance, "web2");
  assert.equal(await store.getAgent("prod", "web3"), undefined);

  // re-enrollment with a new token and a new key
  const agent = await TestAgent.connect(fixture, "prod", "web1", first.privateKey);
  assert.ok(agent.received.some((m) => m.type === "welcome"));
  const second = agentKey();
  const again = await mintEnrollment(store, {
    stack: "prod",
    instance: "web1",
    caFingerprint: ca,
    ttlMs: 60_000,
  });
  assert.equal((await enrollAgent(store, { token: again, publicKey: second.publicKey }, ca)).generation, 2);
  agent.close();
  const old = await TestAgent.connect(fixture, "prod", "web1", first.privateKey);
  const answer = await old.next((m) => m.type === "refused" || m.type === "welcome");
  assert.equal(answer.type, "refused");
  assert.equal((answer as Extract<ServerMessage, { type: "refused" }>).error.code, "AGENT_AUTH_FAILED");
  const now = await TestAgent.connect(fixture, "prod", "web1", second.privateKey);
  t.after(() => now.close());
  assert.ok(now.received.some((m) => m.type === "welcome"));
  assert.equal(fixture.hub.connections()[0]?.generation, 2);
});
