import assert from "node:assert/strict";
import { test } from "node:test";
import { LoginThrottle } from "./throttle.ts";

test("the throttle refuses a key after 5 failures within 15 minutes, until the oldest leaves the window", () => {
  const throttle = new LoginThrottle();
  const minute = 60_000;
  const t0 = 1_000_000_000;
  for (let i = 0; i < 4; i++) throttle.fail(["user:alice", "address:10.0.0.1"], t0 + i * minute);
  throttle.check(["user:alice"], t0 + 5 * minute);
  throttle.fail(["user:alice"], t0 + 5 * minute);
  assert.throws(() => throttle.check(["user:alice"], t0 + 6 * minute), {
    code: "LOGIN_THROTTLED",
    message: /try again in 9 min/,
  });
  // another key is not throttled by alice's failures (the address had 4)
  throttle.check(["user:bob", "address:10.0.0.1"], t0 + 6 * minute);
  assert.throws(() => throttle.check(["user:bob", "user:alice"], t0 + 6 * minute), {
    code: "LOGIN_THROTTLED",
  });
  // the first failure leaves the window at t0 + 15 min: one more try, then refused again
  assert.throws(() => throttle.check(["user:alice"], t0 + 15 * minute - 1), { code: "LOGIN_THROTTLED" });
  throttle.check(["user:alice"], t0 + 15 * minute);
  throttle.fail(["user:alice"], t0 + 15 * minute);
  assert.throws(() => throttle.check(["user:alice"], t0 + 15 * minute + 1), { code: "LOGIN_THROTTLED" });
  throttle.forgive(["user:alice"], t0 + 15 * minute);
  throttle.check(["user:alice"], t0 + 15 * minute + 1);
  throttle.fail(["user:alice"], t0 + 15 * minute + 2);
  throttle.clear("user:alice");
  throttle.check(["user:alice"], t0 + 15 * minute + 1);
});

test("the throttle forgets the oldest keys beyond 10,000", () => {
  const throttle = new LoginThrottle(1, 60_000);
  for (let i = 0; i <= 10_000; i++) throttle.fail([`address:${i}`], 1000);
  throttle.check(["address:0"], 1000); // forgotten
  assert.throws(() => throttle.check(["address:10000"], 1000), { code: "LOGIN_THROTTLED" });
});
