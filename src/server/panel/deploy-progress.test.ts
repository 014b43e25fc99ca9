import assert from "node:assert/strict";
import { test } from "node:test";
import {
  batchesOf,
  paramsText,
  phaseOf,
  progressText,
  type Step,
  stepOf,
  withStep,
  wordsOf,
} from "./ui/deploy-progress.ts";

const step = (instance: string, batch: number, phase: string, status = "succeeded"): Step => ({
  instance,
  batch,
  phase,
  status,
});

test("batchesOf: instances grouped by the batch of their first step, with their last phase", () => {
  const steps = [
    step("web1", 0, "drain"),
    step("web2", 0, "drain"),
    step("web1", 0, "prepare"),
    step("web2", 0, "prepare", "failed"),
    step("web1", 0, "switch"),
    step("web1", 0, "health"),
    step("web1", 0, "undrain"),
    step("web3", 1, "drain"),
    step("web3", 1, "prepare", "running"),
  ];
  assert.deepEqual(batchesOf(steps), [
    {
      number: 1,
      instances: [
        { instance: "web1", phase: "undrain", words: "back in service", status: "succeeded" },
        { instance: "web2", phase: "prepare", words: "failed: preparing", status: "failed" },
      ],
    },
    {
      number: 2,
      instances: [{ instance: "web3", phase: "prepare", words: "preparing", status: "running" }],
    },
  ]);
});

test("batchesOf: a rollback recorded in a later batch stays with the instance's batch", () => {
  const steps = [step("web1", 0, "switch"), step("web2", 1, "health", "failed"), step("web1", 1, "rollback")];
  const [first, second] = batchesOf(steps);
  assert.deepEqual(
    first?.instances.map((i) => [i.instance, i.words]),
    [["web1", "rolled back"]],
  );
  assert.deepEqual(
    second?.instances.map((i) => [i.instance, i.words]),
    [["web2", "failed: health check"]],
  );
});

test("batchesOf: the plan lists instances without steps as waiting; progress shows within a running step", () => {
  const progress = new Map([
    ["web1", { instance: "web1", phase: "converging", done: 3, total: 12, changed: 2 }],
    ["web2", { instance: "web2", phase: "connecting" }],
  ]);
  const batches = batchesOf([step("web1", 0, "prepare", "running")], progress, [["web1"], ["web2", "web3"]]);
  assert.deepEqual(batches, [
    {
      number: 1,
      instances: [
        {
          instance: "web1",
          phase: "prepare",
          words: "preparing",
          status: "running",
          progress: "converging: 3 of 12 resources, 2 changed",
        },
      ],
    },
    {
      number: 2,
      instances: [
        { instance: "web2", phase: "waiting", words: "waiting", status: "pending", progress: "connecting" },
        { instance: "web3", phase: "waiting", words: "waiting", status: "pending" },
      ],
    },
  ]);
});

test("batchesOf: progress is not shown once the step is over", () => {
  const progress = new Map([["web1", { instance: "web1", phase: "done", changed: 1 }]]);
  const [batch] = batchesOf([step("web1", 0, "prepare", "succeeded")], progress);
  assert.equal(batch?.instances[0]?.progress, undefined);
});

test("progressText: host phases in words, with their counts", () => {
  assert.equal(progressText({ instance: "a", phase: "locked" }), "waiting for the host's run lock");
  assert.equal(
    progressText({ instance: "a", phase: "done", changed: 2, failed: 1 }),
    "converged: 2 changed, 1 failed",
  );
  assert.equal(progressText({ instance: "a", phase: "health" }), "health check");
  assert.equal(progressText({ instance: "a", phase: "new-thing" }), "new-thing");
});

test("withStep: replaces the step of the same instance, batch and phase in place, else appends", () => {
  let steps = [step("web1", 0, "drain", "running")];
  steps = withStep(steps, step("web2", 0, "drain", "running"));
  steps = withStep(steps, step("web1", 0, "drain"));
  assert.deepEqual(
    steps.map((s) => [s.instance, s.status]),
    [
      ["web1", "succeeded"],
      ["web2", "running"],
    ],
  );
});

test("wordsOf, stepOf, phaseOf: words, and feed data read defensively", () => {
  assert.equal(wordsOf("health", "running"), "health check");
  assert.equal(wordsOf("something-new", "running"), "something-new");
  assert.equal(stepOf({ instance: "a" }), undefined);
  assert.deepEqual(stepOf({ instance: "a", batch: 0, phase: "drain" }), {
    instance: "a",
    batch: 0,
    phase: "drain",
    status: "running",
  });
  assert.equal(phaseOf(null), undefined);
  assert.deepEqual(phaseOf({ instance: "a", phase: "prepare", done: 1 }), {
    instance: "a",
    phase: "prepare",
    done: 1,
  });
});

test("batchesOf: the weights an A/B's end sets do not hide an instance's last deploy phase", () => {
  const steps = [step("app2", 0, "undrain"), step("app2", 2, "weight"), step("app1", 2, "weight")];
  const [first, last] = batchesOf(steps);
  assert.deepEqual(
    first?.instances.map((i) => [i.instance, i.words]),
    [["app2", "back in service"]],
  );
  assert.deepEqual(
    last?.instances.map((i) => [i.instance, i.words]),
    [["app1", "weight set"]],
  );
});

test("paramsText: lists and maps in words", () => {
  assert.equal(
    paramsText({ batch: 1, instances: ["app2", "app3"], weights: { app1: 100, app2: 50 }, none: undefined }),
    "batch 1, instances app2 app3, weights app1=100 app2=50",
  );
});
