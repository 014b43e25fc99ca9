import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { test } from "node:test";
import { StackQueue } from "./actions.ts";
import { Healer, healerPolicy, isPartition } from "./healer.ts";
import { contextFor, FakeClock, recordingActions, storeWith } from "./testing.ts";

const apps = Array.from({ length: 9 }, (_, i) => `app${i + 1}`);
const stackFile = {
  name: "shop",
  layers: [
    { name: "app", auto_healing: true },
    { name: "db", auto_healing: false },
  ],
  instances: [...apps.map((name) => ({ name, layers: ["app"] })), { name: "db1", layers: ["db"] }],
};
const allOnline = Object.fromEntries([...apps, "db1"].map((name) => [name, "online" as const]));
const t = (instance: string) => ({ stack: "shop", instance });
const second = 1000;

async function healer(maxReplacements = 3) {
  const { store, kitchen } = await storeWith(stackFile, allOnline);
  const clock = new FakeClock("2026-06-01T12:00:00Z");
  const { actions, done } = recordingActions(store);
  const queue = new StackQueue(() => undefined);
  const ctx = contextFor(store, kitchen, { keepaliveMs: 30 * second });
  const h = new Healer(ctx, actions, queue, clock.now, healerPolicy(30 * second, { maxReplacements }));
  const status = async (name: string) => (await store.getInstance("shop", name))?.status;
  const audit = async () =>
    (await store.listAudit({ stack: "shop" })).reverse().map((e) => `${e.action} ${e.target}`);
  return { store, clock, done, queue, h, status, audit };
}

test("a lost agent: connection_lost, configure on the rest, replaced after its window when its layer heals", async (tc) => {
  const { store, clock, done, queue, h, status, audit } = await healer();
  tc.after(() => store.close());
  await h.lost(t("app1"), "missed 3 keepalives (90 s)");
  assert.equal(await status("app1"), "connection_lost");
  const history = await store.statusHistory("shop", "app1");
  assert.equal(history.at(-1)!.reason, "its agent went silent: missed 3 keepalives (90 s)");
  await queue.idle();
  assert.deepEqual(done, [{ action: "configure", stack: "shop", instances: [] }]);
  // inside its window (one keepalive + grace = 60 s) nothing is decided
  clock.advance(59 * second);
  assert.deepEqual(await h.evaluate(), []);
  clock.advance(1 * second);
  const [decision] = await h.evaluate();
  assert.equal(decision!.verdict, "replace");
  assert.match(decision!.reason, /missed 3 keepalives .* layer app has auto_healing/);
  await queue.idle();
  assert.deepEqual(done.at(-1), { action: "replace", stack: "shop", instances: ["app1"] });
  assert.equal(await status("app1"), "online");

  // db has no auto_healing: configured around, left connection_lost
  await h.lost(t("db1"), "missed 3 keepalives (90 s)");
  clock.advance(61 * second);
  assert.deepEqual(
    (await h.evaluate()).map((d) => d.verdict),
    ["no-auto-healing"],
  );
  await queue.idle();
  assert.equal(await status("db1"), "connection_lost");
  assert.equal(done.filter((d) => d.action === "replace").length, 1);
  assert.deepEqual(await audit(), [
    "instance.connection_lost app1",
    "heal.replace app1",
    "instance.connection_lost db1",
  ]);
  const entries = await store.listAudit({ stack: "shop", outcome: "auto" });
  assert.ok(entries.every((e) => e.actor === "system:healer" && e.reason));
});

test("an agent back before its replacement starts cancels it, and its instance is online again", async (tc) => {
  const { store, clock, done, queue, h, status, audit } = await healer();
  tc.after(() => store.close());
  await h.lost(t("app2"), "missed 3 keepalives (90 s)");
  clock.advance(30 * second);
  await h.connected(t("app2"));
  assert.equal(await status("app2"), "online");
  clock.advance(60 * second);
  assert.deepEqual(await h.evaluate(), []);
  await queue.idle();
  assert.deepEqual(
    done.map((d) => d.action),
    ["configure", "configure"],
    "configured when it went and when it came back; never replaced",
  );
  assert.deepEqual(await audit(), [
    "instance.connection_lost app2",
    "heal.cancelled app2",
    "instance.online app2",
  ]);
});

test("partition guard: 30% lost at once is healed, more than 30% is a partition that heals nothing until they come back", async (tc) => {
  // three of ten (30%, not more): dead hosts, healed
  const three = await healer(10);
  tc.after(() => three.store.close());
  for (const name of ["app1", "app2", "app3"]) {
    await three.h.lost(t(name), "missed 3 keepalives (90 s)");
    three.clock.advance(10 * second);
  }
  three.clock.advance(60 * second);
  assert.deepEqual(
    (await three.h.evaluate()).map((d) => `${d.verdict} ${d.instance}`),
    ["replace app1", "replace app2", "replace app3"],
  );

  // four of ten within one window: a partition
  const { store, clock, done, queue, h, status, audit } = await healer(10);
  tc.after(() => store.close());
  for (const name of ["app1", "app2", "app3", "app4"]) {
    await h.lost(t(name), "missed 3 keepalives (90 s)");
    clock.advance(8 * second);
  }
  clock.advance(60 * second);
  const [partition] = await h.evaluate();
  assert.equal(partition!.verdict, "partition");
  assert.match(
    partition!.reason,
    /4 of 10 agents \(40%\) went silent within 60 s \(app1, app2, app3, app4\)/,
  );
  assert.deepEqual(await h.evaluate(), [], "decided once");
  // one more lost later: held while the partition lasts
  await h.lost(t("app5"), "missed 3 keepalives (90 s)");
  clock.advance(61 * second);
  assert.deepEqual(
    (await h.evaluate()).map((d) => d.verdict),
    ["held"],
  );
  for (const name of ["app1", "app2", "app3"]) await h.connected(t(name));
  clock.advance(60 * second);
  assert.deepEqual(await h.evaluate(), [], "app4 is still silent: app5 still waits");
  await h.connected(t("app4"));
  assert.deepEqual(
    (await h.evaluate()).map((d) => `${d.verdict} ${d.instance}`),
    ["replace app5"],
  );
  await queue.idle();
  assert.deepEqual(
    done.filter((d) => d.action === "replace").map((d) => d.instances[0]),
    ["app5"],
  );
  for (const name of ["app1", "app2", "app3", "app4", "app5"]) assert.equal(await status(name), "online");
  const skipped = (await audit()).filter((line) => line.startsWith("heal.skipped"));
  assert.deepEqual(skipped, [
    "heal.skipped app1",
    "heal.skipped app2",
    "heal.skipped app3",
    "heal.skipped app4",
    "heal.skipped app5",
  ]);
});

test("rate limit: at most N replacements per stack in 10 minutes; later ones heal again", async (tc) => {
  const { store, clock, done, queue, h, status } = await healer(2);
  tc.after(() => store.close());
  const verdicts: string[] = [];
  for (const name of ["app1", "app2", "app3"]) {
    await h.lost(t(name), "missed 3 keepalives (90 s)");
    clock.advance(61 * second);
    for (const d of await h.evaluate()) verdicts.push(`${d.verdict} ${d.instance}`);
    await queue.idle();
  }
  assert.deepEqual(verdicts, ["replace app1", "replace app2", "rate-limited app3"]);
  assert.equal(await status("app3"), "connection_lost");
  const limited = (await store.listAudit({ stack: "shop" })).find((e) => e.action === "heal.skipped")!;
  assert.match(limited.reason!, /rate limit: 2 replacements in stack shop within 10 min \(at most 2\)/);
  // ten minutes after the first replacement, one more may be healed
  clock.advance(8 * 60 * second);
  await h.lost(t("app4"), "missed 3 keepalives (90 s)");
  clock.advance(61 * second);
  assert.deepEqual(
    (await h.evaluate()).map((d) => `${d.verdict} ${d.instance}`),
    ["replace app4"],
  );
  await queue.idle();
  assert.equal(done.filter((d) => d.action === "replace").length, 3);
});

test("isPartition: more than the share, and never one agent alone", () => {
  assert.equal(isPartition(3, 10, 0.3), false);
  assert.equal(isPartition(4, 10, 0.3), true);
  assert.equal(isPartition(1, 1, 0.3), false, "the only agent of a stack went silent: its host died");
  assert.equal(isPartition(2, 2, 0.3), true);
});

test("partition guard counts a stack's agent instances: 2 of 4 agents is a partition, whatever its SSH instances", async (tc) => {
  const mixed = {
    name: "shop",
    layers: [
      { name: "app", auto_healing: true, transport: "agent" },
      { name: "web", auto_healing: true },
    ],
    instances: [
      ...["a1", "a2", "a3", "a4"].map((name) => ({ name, layers: ["app"] })),
      ...["s1", "s2", "s3", "s4", "s5", "s6"].map((name) => ({ name, layers: ["web"] })),
    ],
  };
  const online = Object.fromEntries(mixed.instances.map((i) => [i.name, "online" as const]));
  const { store, kitchen } = await storeWith(mixed, online);
  tc.after(() => store.close());
  const clock = new FakeClock("2026-06-01T12:00:00Z");
  const { actions } = recordingActions(store);
  const h = new Healer(
    contextFor(store, kitchen),
    actions,
    new StackQueue(() => undefined),
    clock.now,
    healerPolicy(30 * second),
  );
  await h.lost(t("a1"), "missed 3 keepalives (90 s)");
  await h.lost(t("a2"), "missed 3 keepalives (90 s)");
  clock.advance(61 * second);
  const [decision] = await h.evaluate();
  assert.equal(decision!.verdict, "partition");
  assert.match(decision!.reason, /2 of 4 agents \(50%\)/);
});

test("several servers: an agent seen again through another server cancels; one server replaces in a stack at a time", async (tc) => {
  const { store, clock, done, queue, h, audit } = await healer();
  tc.after(() => store.close());
  // app1's agent went silent here, and reconnected to another server (which records it as seen)
  const { publicKey } = generateKeyPairSync("ed25519");
  await store.registerAgent({
    stack: "shop",
    instance: "app1",
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
  });
  await h.lost(t("app1"), "missed 3 keepalives (90 s)");
  clock.advance(61 * second);
  await store.agentSeen("shop", "app1", new Date(clock.now().getTime() - 20 * second).toISOString());
  const [back] = await h.evaluate();
  assert.equal(back!.verdict, "cancelled");
  assert.match(
    back!.reason,
    /no longer lost \(connection_lost, its agent last seen 2026-06-01T12:00:41\.000Z\)/,
  );
  // another server is replacing in this stack: app2 waits for its lease
  assert.equal(await store.acquireLease("healer:shop", "server-b", 15 * 60_000, clock.now()), true);
  await h.lost(t("app2"), "missed 3 keepalives (90 s)");
  clock.advance(61 * second);
  assert.deepEqual(await h.evaluate(), []);
  assert.deepEqual(h.waiting().pending, ["shop/app2"]);
  await store.releaseLease("healer:shop", "server-b");
  assert.deepEqual(
    (await h.evaluate()).map((d) => `${d.verdict} ${d.instance}`),
    ["replace app2"],
  );
  await queue.idle();
  assert.deepEqual(
    done.filter((d) => d.action === "replace").map((d) => d.instances[0]),
    ["app2"],
  );
  assert.ok((await audit()).includes("heal.cancelled app1"));
});
