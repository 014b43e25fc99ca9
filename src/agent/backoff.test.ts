import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultBackoff, reconnectDelay } from "./backoff.ts";
import { nextDriftDelay } from "./periodic.ts";

test("the reconnect delay stays within [0, min(30 s, 1 s × 2^attempt)) and reaches both ends", () => {
  for (let attempt = 0; attempt < 12; attempt++) {
    const cap = Math.min(30_000, 1_000 * 2 ** attempt);
    assert.equal(
      reconnectDelay(attempt, defaultBackoff, () => 0),
      0,
    );
    assert.equal(
      reconnectDelay(attempt, defaultBackoff, () => 0.999999),
      Math.floor(0.999999 * cap),
    );
    for (let i = 0; i < 50; i++) {
      const delay = reconnectDelay(attempt);
      assert.ok(delay >= 0 && delay < cap, `attempt ${attempt}: ${delay}`);
    }
  }
  assert.ok(reconnectDelay(1_000, defaultBackoff, () => 0.999999) < 30_000);
});

test("a drift run waits the interval plus a splay in [0, splay)", () => {
  const settings = { runIntervalMs: 1_800_000, splayMs: 300_000, runMode: "enforce" as const };
  assert.equal(
    nextDriftDelay(settings, () => 0),
    1_800_000,
  );
  assert.equal(
    nextDriftDelay(settings, () => 0.999999),
    1_800_000 + 299_999,
  );
});
