import assert from "node:assert/strict";
import { test } from "node:test";
import { StackQueue } from "./actions.ts";
import { Autoscaler, minuteAverages } from "./autoscale.ts";
import { contextFor, FakeClock, recordingActions, storeWith } from "./testing.ts";

const minute = 60_000;
const stackFile = {
  name: "shop",
  layers: [
    {
      name: "app",
      load_based: {
        up: { cpu: 80, instances: 1, wait_minutes: 5, ignore_minutes: 10 },
        down: { cpu: 20, load: 1, instances: 1, wait_minutes: 5, ignore_minutes: 10 },
      },
    },
  ],
  instances: [
    { name: "app1", layers: ["app"] },
    { name: "app2", layers: ["app"], scaling: { type: "load" } },
    { name: "app3", layers: ["app"], scaling: { type: "load" } },
  ],
};

test("the autoscaler follows a load series without flapping: exactly the expected actions", async (tc) => {
  const { store, kitchen } = await storeWith(stackFile, { app1: "online" });
  tc.after(() => store.close());
  const clock = new FakeClock("2026-06-01T00:00:00Z");
  const { actions, done } = recordingActions(store);
  const queue = new StackQueue(() => undefined);
  const scaler = new Autoscaler(contextFor(store, kitchen), actions, queue, clock.now);
  // CPU per minute: 30 min high, 30 min low, then 20 min alternating high/low, then 20 min hovering
  // just around the thresholds (79-81, 19-21): only held thresholds act
  const series = [
    ...Array<number>(30).fill(90),
    ...Array<number>(30).fill(10),
    ...Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 95 : 5)),
    ...Array.from({ length: 20 }, (_, i) => (i % 5 === 4 ? 79 : 81)),
  ];
  const actionsAt: string[] = [];
  for (const [m, cpu] of series.entries()) {
    // each online instance reports once a minute, half a minute into it
    const at = new Date(clock.now().getTime() + 30_000).toISOString();
    for (const record of await store.listInstances("shop"))
      if (record.status === "online")
        await store.recordMetrics({
          stack: "shop",
          instance: record.name,
          at,
          cpu,
          memory: 40,
          load: cpu / 100,
        });
    clock.advance(minute);
    for (const { decision } of await scaler.tick())
      if (decision.action !== "none")
        actionsAt.push(`${m + 1} ${decision.action} ${decision.instances.join(",")}`);
    await queue.idle();
  }
  assert.deepEqual(actionsAt, [
    // 5 minutes above 80%: up; the next one waits out the 10-minute cooldown
    "5 start app2",
    "15 start app3",
    // low from minute 30: both CPU < 20% and load < 1 held 5 minutes; the last started stops first
    "35 stop app3",
    "45 stop app2",
    // minutes 60-100: alternating or hovering: never held for 5 minutes; the 24/7 app1 never stops
  ]);
  assert.deepEqual(
    done.map((d) => `${d.action} ${d.instances.join(",")}`),
    ["start app2", "start app3", "stop app3", "stop app2"],
  );
  const audit = (await store.listAudit({ stack: "shop" })).reverse();
  assert.equal(audit.length, 4);
  assert.ok(audit.every((e) => e.actor === "system:autoscaler" && e.outcome === "auto"));
  assert.match(audit[0]!.reason!, /^layer app: average cpu 90% or more > 80% for 5 min over app1$/);
  assert.match(audit[2]!.reason!, /average cpu 10% or less < 20%, average load 0\.1 or less < 1 for 5 min/);
  assert.equal((await store.getInstance("shop", "app1"))?.status, "online");
});

test("a threshold holds only when every minute of the wait has samples above it", () => {
  const now = new Date("2026-06-01T00:05:00Z");
  const sample = (minuteOf: number, cpu: number, instance = "a") => ({
    stack: "s",
    instance,
    at: new Date(Date.parse("2026-06-01T00:00:30Z") + minuteOf * minute).toISOString(),
    cpu,
    memory: 0,
    load: 0,
  });
  const full = [0, 1, 2, 3, 4].map((m) => sample(m, 90));
  assert.deepEqual(minuteAverages(full, new Set(["a"]), now, 5)?.cpu, [90, 90, 90, 90, 90]);
  assert.equal(minuteAverages(full.slice(1), new Set(["a"]), now, 5), undefined, "minute 0 unmeasured");
  // two instances average together; samples of others (not online) are left out
  const two = [...full, ...[0, 1, 2, 3, 4].map((m) => sample(m, 50, "b")), sample(4, 0, "gone")];
  assert.deepEqual(minuteAverages(two, new Set(["a", "b"]), now, 5)?.cpu, [70, 70, 70, 70, 70]);
  // measured only from 30 s into a one-minute wait: not held, when agents report every 10 s
  const late = [sample(4, 90), sample(4.3, 90)];
  assert.equal(minuteAverages(late, new Set(["a"]), now, 1, 10_000), undefined);
  assert.deepEqual(minuteAverages([sample(3.6, 90), ...late], new Set(["a"]), now, 1, 10_000)?.cpu, [90]);
});
