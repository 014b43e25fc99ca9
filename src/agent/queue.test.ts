import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { ReportQueue } from "./queue.ts";

test("queued reports survive a new queue object (an agent restart), keep their order and leave on ack", async () => {
  const dir = await tempDir();
  const report = {
    kind: "drift" as const,
    mode: "enforce" as const,
    status: "ok" as const,
    changed: 0,
    failed: 0,
  };
  const at = { startedAt: "2026-12-04T00:00:00Z", finishedAt: "2026-12-04T00:00:01Z" };
  const first = new ReportQueue(dir);
  const runs = await Promise.all([1, 2, 3].map(() => first.enqueue({ ...report, ...at })));
  assert.deepEqual(runs.map((r) => r.seq).sort(), [1, 2, 3]);
  const restarted = new ReportQueue(dir);
  assert.deepEqual(
    (await restarted.pending()).map((r) => r.seq),
    [1, 2, 3],
  );
  await restarted.ack(2);
  assert.deepEqual(
    (await new ReportQueue(dir).pending()).map((r) => r.seq),
    [1, 3],
  );
  await restarted.ack(1);
  await restarted.ack(3);
  // an empty queue never reuses a seq: the counter is durable
  assert.equal((await new ReportQueue(dir).enqueue({ ...report, ...at })).seq, 4);
  // a lost counter: the queue's highest seq still holds
  await fs.rm(path.join(dir, "seq"));
  assert.equal((await new ReportQueue(dir).enqueue({ ...report, ...at })).seq, 5);
  const files = await fs.readdir(path.join(dir, "queue"));
  assert.deepEqual(files.sort(), ["4.json", "5.json"]);
});
