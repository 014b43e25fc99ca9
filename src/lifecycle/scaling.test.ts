import assert from "node:assert/strict";
import { test } from "node:test";
import type { Instance } from "../stacks/schema.ts";
import { shouldRun, zonedHour } from "./scaling.ts";

const instance = (scaling: Instance["scaling"]): Instance => ({
  name: "app1",
  layers: ["app"],
  provider: { type: "container" },
  scaling,
  attributes: {},
});

test("24/7 instances always run; load-based ones are left to the autoscaler or galley instance start", () => {
  assert.equal(shouldRun(instance({ type: "always" }), new Date()), "yes");
  assert.equal(shouldRun(instance({ type: "load" }), new Date()), "load");
});

test("time-based instances run in their UTC hours of the weekday, not outside", () => {
  const office = instance({ type: "time", schedule: { monday: [9, 10, 11], saturday: [] }, timezone: "UTC" });
  // 2026-11-23 is a Monday
  assert.equal(shouldRun(office, new Date("2026-11-23T09:30:00Z")), "yes");
  assert.equal(shouldRun(office, new Date("2026-11-23T11:59:59Z")), "yes");
  assert.equal(shouldRun(office, new Date("2026-11-23T12:00:00Z")), "no");
  assert.equal(shouldRun(office, new Date("2026-11-23T08:59:59Z")), "no");
  assert.equal(shouldRun(office, new Date("2026-11-28T10:00:00Z")), "no", "Saturday: no hours");
  assert.equal(shouldRun(office, new Date("2026-11-24T10:00:00Z")), "no", "Tuesday: not in the schedule");
});

test("a time zone moves the slot with daylight saving time", () => {
  const paris = instance({ type: "time", schedule: { monday: [9] }, timezone: "Europe/Paris" });
  // Monday 2026-03-23: winter time (UTC+1): 09:00 in Paris is 08:00 UTC
  assert.equal(shouldRun(paris, new Date("2026-03-23T08:30:00Z")), "yes");
  assert.equal(shouldRun(paris, new Date("2026-03-23T07:30:00Z")), "no");
  // Sunday 2026-03-29 the clocks go forward; Monday 2026-03-30 (UTC+2): 09:00 in Paris is 07:00 UTC
  assert.equal(shouldRun(paris, new Date("2026-03-30T07:30:00Z")), "yes");
  assert.equal(shouldRun(paris, new Date("2026-03-30T08:30:00Z")), "no");
  // the weekday is Paris's too: Sunday 23:30 UTC is already Monday 00:30 there
  const midnight = instance({ type: "time", schedule: { monday: [0] }, timezone: "Europe/Paris" });
  assert.equal(shouldRun(midnight, new Date("2026-11-22T23:30:00Z")), "yes");
  assert.deepEqual(zonedHour(new Date("2026-11-22T23:30:00Z"), "UTC"), { day: "sunday", hour: 23 });
  // the US changes on another date (2026-03-08): New York, Monday 2026-03-09 09:00 EDT is 13:00 UTC
  const ny = instance({ type: "time", schedule: { monday: [9] }, timezone: "America/New_York" });
  assert.equal(shouldRun(ny, new Date("2026-03-09T13:15:00Z")), "yes");
  assert.equal(shouldRun(ny, new Date("2026-03-02T14:15:00Z")), "yes", "a week before, EST: 14:00 UTC");
  assert.equal(shouldRun(ny, new Date("2026-03-02T13:15:00Z")), "no");
});
