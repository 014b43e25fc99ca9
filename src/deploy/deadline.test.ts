import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { batchDeadline, defaultDeadlineMs, parseDeadline } from "./deadline.ts";

test("--deadline: seconds to milliseconds, 600 s by default; 0, words and negatives are usage errors naming the flag", () => {
  assert.equal(parseDeadline(undefined), defaultDeadlineMs);
  assert.equal(defaultDeadlineMs, 600_000);
  assert.equal(parseDeadline("90"), 90_000);
  assert.equal(parseDeadline("2.5"), 2500);
  for (const bad of ["0", "-5", "soon", "", " "]) {
    assert.throws(
      () => parseDeadline(bad),
      (e: Error & { code?: string }) => e.code === "USAGE" && e.message.startsWith(`--deadline ${bad}:`),
      JSON.stringify(bad),
    );
  }
});

test("a batch's deadline aborts its signal with an error naming the batch, and says it expired", async () => {
  const deadline = batchDeadline(undefined, 20, "batch 2 of 3 (app2)");
  await once(deadline.signal, "abort");
  assert.equal(deadline.expired(), true);
  const reason = deadline.signal.reason as Error & { code: string };
  assert.equal(reason.code, "DEPLOY_FAILED");
  assert.equal(reason.message, "batch 2 of 3 (app2) did not finish within --deadline 0.02 s");
  deadline.clear();
});

test("the deployment's own signal aborts the batch too, and that is not the deadline", () => {
  const parent = new AbortController();
  const deadline = batchDeadline(parent.signal, 60_000, "batch 1 of 1 (app1)");
  assert.equal(deadline.signal.aborted, false);
  parent.abort(new Error("SIGINT"));
  assert.equal(deadline.signal.aborted, true);
  assert.equal(deadline.expired(), false);
  deadline.clear();
});

test("a batch that ends in time: clear() stops the timer, the signal never aborts", async () => {
  const deadline = batchDeadline(undefined, 30, "batch 1 of 2 (app1)");
  deadline.clear();
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(deadline.signal.aborted, false);
  assert.equal(deadline.expired(), false);
});
