import assert from "node:assert/strict";
import { test } from "node:test";
import { type AgentMessage, fromWire, parseAgentMessage, toWire } from "./agent-protocol.ts";

const at = "2026-12-04T01:00:00.000Z";

test("every message an agent sends parses; extra fields are dropped", () => {
  const messages: AgentMessage[] = [
    { type: "auth", stack: "prod", instance: "web1", signature: "c2ln", agent: "galley 1.0" },
    { type: "keepalive", seq: 3 },
    { type: "job-phase", id: "j1", phase: { phase: "converging", done: 1, total: 3, changed: 1, failed: 0 } },
    { type: "job-phase", id: "j1", phase: { phase: "locked", holder: "galley apply" } },
    {
      type: "job-done",
      id: "j1",
      outcome: { status: "ok", report: { resources: [] } as never, durationMs: 5 },
    },
    {
      type: "job-done",
      id: "j1",
      outcome: { status: "unreachable", error: { code: "X", message: "m" }, durationMs: 5 },
    },
    { type: "job-done", id: "j1", outcome: { status: "skipped", reason: "newer state", durationMs: 0 } },
    { type: "result", id: "c1", ok: true, value: { $base64: "AA==" } },
    { type: "result", id: "c1", ok: false, error: { code: "EXEC_FAILED", message: "m", hint: "h" } },
    {
      type: "report",
      run: {
        seq: 1,
        kind: "drift",
        mode: "report",
        status: "drift",
        changed: 1,
        failed: 0,
        startedAt: at,
        finishedAt: at,
      },
    },
    { type: "metrics", at, cpu: 12.5, memory: 50, load: 0.25 },
  ];
  for (const message of messages) {
    assert.deepEqual(parseAgentMessage(JSON.stringify({ ...message, extra: 1 })), { message }, message.type);
  }
});

test("frames that break the protocol say how", () => {
  const cases: [string, RegExp][] = [
    ["nope", /not JSON/],
    ["[]", /a message that breaks the protocol/],
    [JSON.stringify({ type: "hello" }), /"hello" message that breaks the protocol/],
    [JSON.stringify({ type: "keepalive", seq: -1 }), /at seq/],
    [JSON.stringify({ type: "result", id: "c", ok: "yes" }), /"result" message/],
    [JSON.stringify({ type: "metrics", at: "yesterday", cpu: 1, memory: 1, load: 1 }), /at at/],
    [JSON.stringify({ type: "job-phase", id: "j", phase: { phase: "dancing" } }), /"job-phase" message/],
  ];
  for (const [frame, pattern] of cases) {
    const parsed = parseAgentMessage(frame);
    assert.ok("error" in parsed, frame);
    assert.match(parsed.error, pattern, frame);
  }
});

test("bytes travel as {$base64} and undefined as null, both ways", () => {
  const args = [["cat"], { input: new Uint8Array([0, 1, 255]), cwd: undefined, env: { A: "1" } }];
  const wire = JSON.parse(JSON.stringify(toWire(args)));
  assert.deepEqual(wire, [["cat"], { input: { $base64: "AAH/" }, env: { A: "1" } }]);
  assert.deepEqual(fromWire(wire), [["cat"], { input: new Uint8Array([0, 1, 255]), env: { A: "1" } }]);
  assert.equal(toWire(undefined), null);
});
