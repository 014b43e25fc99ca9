import assert from "node:assert/strict";
import { test } from "node:test";
import type { Instance } from "../stacks/schema.ts";
import { shouldRun } from "./scaling.ts";

const instance = (scaling: Instance["scaling"]): Instance => ({
  name: "app1",
  layers: ["app"],
  provider: { type: "container" },
  scaling,
  attributes: {},
});

test("24/7 instances always run; load-based ones are left to galley instance start", () => {
  assert.equal(shouldRun(instance({ type: "always" }), new Date()), "yes");
  assert.equal(shouldRun(instance({ type: "load", up: { cpu: 80 }, down: { cpu: 20 } }), new Date()), "load");
});

test("time-based instances run in their UTC hours of the weekday, not outside", () => {
  const office = instance({ type: "time", schedule: { monday: [9, 10, 11], saturday: [] } });
  // 2026-11-23 is a Monday
  assert.equal(shouldRun(office, new Date("2026-11-23T09:30:00Z")), "yes");
  assert.equal(shouldRun(office, new Date("2026-11-23T11:59:59Z")), "yes");
  assert.equal(shouldRun(office, new Date("2026-11-23T12:00:00Z")), "no");
  assert.equal(shouldRun(office, new Date("2026-11-23T08:59:59Z")), "no");
  assert.equal(shouldRun(office, new Date("2026-11-28T10:00:00Z")), "no", "Saturday: no hours");
  assert.equal(shouldRun(office, new Date("2026-11-24T10:00:00Z")), "no", "Tuesday: not in the schedule");
});
