import assert from "node:assert/strict";
import { test } from "node:test";
import { strategies as serverStrategies } from "../../deploy/strategies/index.ts";
import { deployBody, strategies } from "./ui/deploy-request.ts";

const form = {
  app: "hello",
  revision: " main ",
  strategy: "rolling",
  batch: "1",
  "max-unavailable": "",
  "max-fail": "0",
  ab: "10%",
};

test("deployBody: the strategy with the size flags it takes; empty fields left out", () => {
  assert.deepEqual(deployBody(form), {
    app: "hello",
    revision: "main",
    strategy: "rolling",
    batch: "1",
    "max-fail": "0",
  });
});

test("deployBody: a flag the strategy does not take is never sent", () => {
  assert.deepEqual(deployBody({ ...form, strategy: "cutover" }), {
    app: "hello",
    revision: "main",
    strategy: "cutover",
    "max-fail": "0",
  });
});

test("deployBody: A/B sends its share, no strategy and no sizes; no revision: the stack file's", () => {
  assert.deepEqual(deployBody({ ...form, revision: "", strategy: "ab", ab: "25%" }), {
    app: "hello",
    ab: "25%",
  });
  assert.deepEqual(deployBody({ ...form, revision: "", strategy: "ab", ab: " " }), {
    app: "hello",
    ab: "10%",
  });
});

test("deployBody: an unknown strategy is the default, rolling", () => {
  assert.equal(deployBody({ ...form, strategy: "nope" }).strategy, "rolling");
});

test("strategies: the form offers every strategy of the server, each with the flags it takes", () => {
  const flag = { batch: "batch", maxUnavailable: "max-unavailable", maxFail: "max-fail" } as const;
  const server = Object.fromEntries(
    Object.entries(serverStrategies).map(([name, s]) => [name, s.accepts.map((k) => flag[k])]),
  );
  const form = Object.fromEntries(strategies.map((s) => [s.value, [...s.takes]]));
  assert.deepEqual(form, server);
});
