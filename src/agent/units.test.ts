import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { defaultBackoff, reconnectDelay } from "./backoff.ts";
import { BundleCache } from "./bundles.ts";
import { isBuiltin, resolveBuiltin } from "./builtin.ts";
import { ensureAgentKey, readAgentKey } from "./config.ts";
import { cpuPercent, parseCpuTimes, parseLoad, parseMemoryPercent } from "./metrics.ts";
import { nextDriftDelay } from "./periodic.ts";
import { ReportQueue } from "./queue.ts";
import { decodeEnrollmentToken, encodeEnrollmentToken } from "./token.ts";

const fingerprint = "ab".repeat(32);

test("an enrollment token decodes to its stack, instance, secret and CA fingerprint", () => {
  const token = encodeEnrollmentToken({
    stack: "prod",
    instance: "web1",
    secret: "c2VjcmV0",
    ca: fingerprint,
  });
  assert.match(token, /^gle1_[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeEnrollmentToken(`  ${token}\n`), {
    stack: "prod",
    instance: "web1",
    secret: "c2VjcmV0",
    ca: fingerprint,
  });
});

test("a token that is not one is refused with what is wrong", () => {
  const refused = (token: string, message: RegExp) =>
    assert.throws(
      () => decodeEnrollmentToken(token),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "ENROLL_REFUSED");
        assert.match(error.message, message);
        return true;
      },
    );
  refused("abc", /does not start with gle1_/);
  refused("gle1_!!!", /not base64url JSON/);
  refused(`gle1_${Buffer.from(JSON.stringify({ s: "p", i: "w", k: "x" })).toString("base64url")}`, /missing/);
  refused(
    `gle1_${Buffer.from(JSON.stringify({ s: "p", i: "w", k: "x", ca: "zz" })).toString("base64url")}`,
    /64 hex/,
  );
});

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

test("the bundle cache keeps only bytes matching their id and fetches a cached bundle never again", async () => {
  const dir = await tempDir();
  const cache = new BundleCache(dir);
  const data = Buffer.from("a bundle's bytes");
  const id = createHash("sha256").update(data).digest("hex");
  let fetches = 0;
  const fetch = async () => {
    fetches += 1;
    return data;
  };
  assert.deepEqual(await cache.ensure(id, fetch), { file: cache.file(id), fetched: data.length });
  assert.deepEqual(await cache.ensure(id, fetch), { file: cache.file(id), fetched: 0 });
  assert.equal(fetches, 1);
  assert.deepEqual(await fs.readFile(cache.file(id)), data);
  const other = "0".repeat(64);
  await assert.rejects(cache.ensure(other, fetch), (error: Error & { code?: string }) => {
    assert.equal(error.code, "BUNDLE_INVALID");
    assert.match(error.message, new RegExp(`has the id ${id}`));
    return true;
  });
  await assert.rejects(fs.stat(cache.file(other)), { code: "ENOENT" });
  await assert.rejects(cache.ensure("../etc", fetch), { code: "BUNDLE_INVALID" });
});

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

test("built-in recipes resolve inside this install's src/, and nothing else does", () => {
  assert.ok(isBuiltin("galley:lifecycle/recipes/packages.ts"));
  const file = resolveBuiltin("galley:lifecycle/recipes/packages.ts");
  assert.ok(
    file.endsWith(`${path.sep}src${path.sep}lifecycle${path.sep}recipes${path.sep}packages.ts`),
    file,
  );
  assert.equal(resolveBuiltin("web::default"), "web::default");
  for (const bad of ["galley:../../etc/passwd.ts", "galley:/etc/x.ts", "galley:", "galley:core/x.json"])
    assert.throws(() => resolveBuiltin(bad), { code: "RECIPE_NOT_FOUND" });
});

test("the agent key is made once (0600), kept on re-enrollment, replaced with --new-key", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "etc", "agent.key");
  const made = await ensureAgentKey(file);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  const kept = await ensureAgentKey(file);
  assert.ok(made.equals(kept));
  const fresh = await ensureAgentKey(file, true);
  assert.ok(!fresh.equals(made));
  assert.ok((await readAgentKey(file))!.equals(fresh));
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey;
  await fs.writeFile(file, rsa.export({ type: "pkcs8", format: "pem" }) as string);
  await assert.rejects(readAgentKey(file), { code: "AGENT_CONFIG_INVALID" });
});
