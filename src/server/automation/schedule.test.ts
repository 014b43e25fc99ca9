import assert from "node:assert/strict";
import { test } from "node:test";
import { StackQueue } from "./actions.ts";
import { Scheduler, scheduleMoves } from "./schedule.ts";
import { contextFor, FakeClock, recordingActions, storeWith } from "./testing.ts";

const stackFile = {
  name: "office",
  layers: [{ name: "app" }],
  instances: [
    { name: "app1", layers: ["app"] },
    // Paris office hours, Monday 9-10 (and a load instance the scheduler never moves)
    {
      name: "day1",
      layers: ["app"],
      scaling: { type: "time", schedule: { monday: [9, 10] }, timezone: "Europe/Paris" },
    },
    { name: "burst1", layers: ["app"], scaling: { type: "load" } },
  ],
};

test("the scheduler starts a time-based instance when its slot begins in its time zone, and stops it when it ends", async (tc) => {
  const { store, kitchen } = await storeWith(stackFile, { app1: "online" });
  tc.after(() => store.close());
  // Monday 2026-03-30, summer time in Paris (UTC+2): 08:59 there is 06:59 UTC
  const clock = new FakeClock("2026-03-30T06:59:00Z");
  const { actions, done } = recordingActions(store);
  const queue = new StackQueue(() => undefined);
  const log: string[] = [];
  const scheduler = new Scheduler(contextFor(store, kitchen, { log }), actions, queue, clock.now);
  assert.deepEqual(await scheduler.tick(), []);
  clock.advance(60_000);
  const [start] = await scheduler.tick();
  assert.deepEqual(start, {
    instance: "day1",
    action: "start",
    reason: "its slot began: monday 09:00-10:00 Europe/Paris, schedule monday [9, 10]",
  });
  await queue.idle();
  assert.equal((await store.getInstance("office", "day1"))?.status, "online");
  // 10:59 Paris: still in the slot; 11:00: ended
  clock.advance(119 * 60_000);
  assert.deepEqual(await scheduler.tick(), []);
  clock.advance(60_000);
  const [stop] = await scheduler.tick();
  assert.equal(stop!.action, "stop");
  assert.match(stop!.reason, /its slot ended: monday 11:00-12:00 Europe\/Paris/);
  await queue.idle();
  assert.deepEqual(
    done.map((d) => `${d.action} ${d.instances.join(",")}`),
    ["start day1", "stop day1"],
  );
  const audit = (await store.listAudit({ stack: "office" })).reverse();
  assert.deepEqual(
    audit.map((e) => [e.actor, e.action, e.target, e.outcome]),
    [
      ["system:scheduler", "instance.start", "day1", "auto"],
      ["system:scheduler", "instance.stop", "day1", "auto"],
    ],
  );
  assert.equal(audit[0]!.reason, start!.reason);
  assert.ok(log.some((line) => line.includes("scheduler: office/day1: start: its slot began")));
});

test("two servers: only the holder of the stack's lease moves its instances", async (tc) => {
  const { store, kitchen } = await storeWith(stackFile);
  tc.after(() => store.close());
  const clock = new FakeClock("2026-03-30T07:30:00Z");
  const a = recordingActions(store);
  const b = recordingActions(store);
  const queue = new StackQueue(() => undefined);
  const first = new Scheduler(contextFor(store, kitchen, { id: "server-a" }), a.actions, queue, clock.now);
  const second = new Scheduler(
    contextFor(store, kitchen, { id: "server-b" }),
    b.actions,
    new StackQueue(() => undefined),
    clock.now,
  );
  // server-a takes the lease first; server-b sees nothing to do while it holds it
  await first.tick();
  await queue.idle();
  await store.setInstanceStatus("office", "day1", "stopped", "test: stopped by hand");
  assert.deepEqual(await second.tick(), []);
  assert.equal(b.done.length, 0);
  assert.deepEqual(
    a.done.map((d) => d.action),
    ["start"],
  );
});

test("scheduleMoves: only time-based instances, from stopped to start and from online to stop", () => {
  const stack = {
    instances: [
      {
        name: "a",
        layers: ["x"],
        provider: { type: "container" as const },
        attributes: {},
        scaling: { type: "always" as const },
      },
      {
        name: "t",
        layers: ["x"],
        provider: { type: "container" as const },
        attributes: {},
        scaling: { type: "time" as const, schedule: { sunday: [23] }, timezone: "UTC" },
      },
    ],
  };
  const sunday = new Date("2026-11-22T23:10:00Z");
  assert.deepEqual(
    scheduleMoves(stack, new Map([["t", "booting"]]), sunday),
    [],
    "a starting instance is left to its operation",
  );
  assert.deepEqual(
    scheduleMoves(stack, new Map([["a", "stopped"]]), sunday).map((m) => m.instance),
    ["t"],
  );
  assert.deepEqual(
    scheduleMoves(stack, new Map([["t", "online"]]), new Date("2026-11-23T00:00:00Z"))[0]?.action,
    "stop",
  );
});

test("a failing move is not repeated every tick: the stack is left alone for a while, then tried again", async (tc) => {
  const { store, kitchen } = await storeWith(stackFile);
  tc.after(() => store.close());
  const clock = new FakeClock("2026-03-30T07:30:00Z");
  const log: string[] = [];
  let tries = 0;
  const { actions } = recordingActions(store);
  const failing = {
    ...actions,
    start: async () => {
      tries += 1;
      throw new Error("no such stack file");
    },
  };
  const queue = new StackQueue((line) => log.push(line), { clock: clock.now, retryMs: 5 * 60_000 });
  const scheduler = new Scheduler(contextFor(store, kitchen), failing, queue, clock.now);
  assert.equal((await scheduler.tick()).length, 1);
  await queue.idle();
  assert.match(
    log.at(-1)!,
    /office: start day1 failed: no such stack file \(the stack is left alone for 300 s\)/,
  );
  for (let i = 0; i < 4; i++) {
    clock.advance(60_000);
    assert.deepEqual(await scheduler.tick(), []);
  }
  clock.advance(60_000);
  assert.equal((await scheduler.tick()).length, 1);
  await queue.idle();
  assert.equal(tries, 2);
});
