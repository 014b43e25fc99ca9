import assert from "node:assert/strict";
import { test } from "node:test";
import { cpuPercent, MetricsSampler, parseCpuTimes, parseLoad, parseMemoryPercent } from "./metrics.ts";

test("metrics: CPU busy between two /proc/stat samples, memory used, the 1-minute load", () => {
  const before = parseCpuTimes("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")!;
  const after = parseCpuTimes("cpu  200 0 200 1300 100 0 0 0 0 0\n")!;
  assert.deepEqual(before, { idle: 800, total: 1000 });
  assert.equal(cpuPercent(before, after), 25);
  assert.equal(cpuPercent(after, after), 0);
  assert.equal(parseCpuTimes("intr 1 2"), undefined);
  const meminfo = "MemTotal:       8000000 kB\nMemFree:         100000 kB\nMemAvailable:    2000000 kB\n";
  assert.equal(parseMemoryPercent(meminfo), 75);
  assert.equal(parseMemoryPercent("garbage"), 0);
  assert.equal(parseLoad("0.42 0.30 0.20 1/123 4567\n"), 0.42);
  assert.equal(parseLoad(""), 0);
});

test("this machine's sample: CPU and memory in 0–100, a load not negative", async () => {
  const sampler = new MetricsSampler();
  await sampler.start();
  const sample = await sampler.sample();
  assert.ok(sample.cpu >= 0 && sample.cpu <= 100, JSON.stringify(sample));
  assert.ok(sample.memory > 0 && sample.memory <= 100, JSON.stringify(sample));
  assert.ok(sample.load >= 0, JSON.stringify(sample));
});
