import assert from "node:assert/strict";
import { test } from "node:test";
import { abSplit } from "./ab.ts";
import { planRollout } from "./strategies/index.ts";

// B's share from the split: count × weightB over the whole weight
const shareOf = (s: { count: number; weightA: number; weightB: number }, total: number) =>
  (100 * s.count * s.weightB) / (s.count * s.weightB + (total - s.count) * s.weightA);

test("A/B split: 10% of 3 is B on one instance at weight 22 against 99 on each of the two others (22 / 220)", () => {
  assert.deepEqual(abSplit(10, 3), { count: 1, weightA: 99, weightB: 22, share: 10 });
});

test("A/B split: the fewest instances that carry the share, at least 1, never all; weights in 1..256", () => {
  for (const total of [2, 3, 4, 5, 10, 20]) {
    for (const percent of [1, 5, 10, 25, 33, 50, 75, 90, 99]) {
      const split = abSplit(percent, total);
      assert.equal(split.count, Math.min(total - 1, Math.max(1, Math.ceil((percent * total) / 100))));
      assert.ok(split.weightA >= 1 && split.weightA <= 256 && split.weightB >= 1 && split.weightB <= 256);
      assert.ok(
        Math.abs(shareOf(split, total) - percent) < 0.5,
        `${percent}% of ${total}: ${JSON.stringify(split)}`,
      );
    }
  }
  assert.deepEqual(abSplit(50, 3).count, 2);
});

test("A/B split: one instance, or a share outside 1..99%, is refused", () => {
  assert.throws(() => abSplit(10, 1), /an A\/B needs 2 or more/);
  assert.throws(() => abSplit(0, 3), /from 1% to 99%/);
  assert.throws(() => abSplit(100, 3), /from 1% to 99%/);
});

test("strategy ab: its instances one at a time, drained, any failure rolls back; no batch flags", () => {
  const plan = planRollout("ab", ["app1", "app2"], {});
  assert.deepEqual(plan.batches, [["app1"], ["app2"]]);
  assert.equal(plan.drain, true);
  assert.equal(plan.maxFail, 0);
  assert.throws(
    () => planRollout("ab", ["app1"], { batch: { count: 2 } }),
    /--batch 2 does not go with --strategy ab/,
  );
});
