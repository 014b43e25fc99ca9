import assert from "node:assert/strict";
import { test } from "node:test";
import { planRollout } from "./index.ts";
import { parseSize } from "./sizes.ts";

const ten = Array.from({ length: 10 }, (_, i) => `app${i + 1}`);

test("sizes: counts and shares parse; 0, 150% and words are usage errors naming the flag", () => {
  assert.deepEqual(parseSize("--batch", "3", 1), { count: 3 });
  assert.deepEqual(parseSize("--batch", "25%", 1), { percent: 25 });
  assert.deepEqual(parseSize("--max-fail", "0", 0), { count: 0 });
  for (const bad of ["0", "150%", "0%", "two", "-1", "1.5"]) {
    assert.throws(
      () => parseSize("--batch", bad, 1),
      (e: Error & { code?: string }) => e.code === "USAGE" && e.message.startsWith(`--batch ${bad}:`),
      bad,
    );
  }
});

test("rolling: batches of --batch, capped by --max-unavailable; default one at a time", () => {
  assert.equal(planRollout("rolling", ten, {}).batches.length, 10);
  const plan = planRollout("rolling", ten, { batch: { count: 4 }, maxUnavailable: { count: 3 } });
  assert.deepEqual(
    plan.batches.map((b) => b.length),
    [3, 3, 3, 1],
  );
  assert.deepEqual(plan.batches.flat(), ten);
  assert.equal(plan.drain, true);
  assert.equal(planRollout("rolling", ten, { batch: { percent: 25 }, maxFail: { percent: 10 } }).maxFail, 1);
  assert.deepEqual(
    planRollout("rolling", ten, { batch: { percent: 25 } }).batches.map((b) => b.length),
    [3, 3, 3, 1],
  );
});

test("pilot: one first, then the rest, never every instance out at once", () => {
  const plan = planRollout("pilot", ten, {});
  assert.deepEqual(plan.batches[0], ["app1"]);
  assert.deepEqual(
    plan.batches.slice(1).map((b) => b.length),
    [5, 4],
  );
  assert.deepEqual(planRollout("pilot", ["a", "b"], {}).batches, [["a"], ["b"]]);
  assert.deepEqual(planRollout("pilot", ["a"], {}).batches, [["a"]]);
});

test("parallel: two halves; cutover: one batch prepared first, all or nothing", () => {
  assert.deepEqual(planRollout("parallel", ["a", "b", "c"], {}).batches, [["a", "b"], ["c"]]);
  const cut = planRollout("cutover", ten, {});
  assert.deepEqual(cut.batches, [ten]);
  assert.equal(cut.prepareFirst, true);
  assert.equal(cut.allOrNothing, true);
  assert.equal(cut.drain, false);
});

test("an unknown strategy, or a flag a strategy does not take, is a usage error", () => {
  assert.throws(() => planRollout("canary", ten, {}), /--strategy canary: no such strategy/);
  assert.throws(
    () => planRollout("parallel", ten, { batch: { count: 2 } }),
    /--batch 2 does not go with --strategy parallel/,
  );
});
