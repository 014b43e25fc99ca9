import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { mintToken } from "../src/server/auth.ts";
import { openSse, type SseStream, simulatedJob } from "../src/server/feed-testing.ts";
import { serveKitchen } from "../src/server/serve.ts";
import type { FeedInput } from "../src/store/store.ts";

// The feed's live streams (`npm run bench -- --only feed`): one server (in this process, with its
// clients: the figures include their parsing), a stack's stream read over HTTPS.
// - latency: an entry appended by the server's process (a run's progress) → received by a client,
//   p50/p99 over 1000 entries appended one by one, with 50 other streams of the stack open; and by
//   another process (a CLI run on the same kitchen: seen by the server's 250 ms poll), 100 entries;
// - throughput: entries/s one stream receives while 100,000 are appended in batches of 500, and
//   reading a 100,000-entry backlog;
// - the simulated 200-instance, 20-minute job (12,000 entries written in bursts) read by a client
//   cut off and reconnecting at random points: lines lost and repeated (both must be 0).

interface Stats {
  p50: number;
  p99: number;
  count: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { p50: at(0.5), p99: at(0.99), count: sorted.length };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The feed benchmark; prints a table and returns the figures. */
export async function benchFeed(options: { others?: number; latencyEntries?: number } = {}) {
  const others = options.others ?? 50;
  const latencyEntries = options.latencyEntries ?? 1000;
  const kitchen = await fs.mkdtemp(path.join(os.tmpdir(), "galley-bench-feed-"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  await fs.writeFile(path.join(kitchen, "stacks", "bench.yaml"), "name: bench\n");
  const server = await serveKitchen({ kitchen, log: () => {} });
  const store = server.ctx.store;
  const adminToken = (await fs.readFile(server.adminTokenFile, "utf8")).trim();
  const open: SseStream[] = [];
  try {
    // 50 other streams of the stack (20 per token at most: a token per 10)
    for (let i = 0; i < others; i++) {
      const token =
        i % 10 === 0
          ? (await mintToken(store, { name: `viewer${i}`, grants: [{ stack: "bench", role: "viewer" }] }))
              .secret
          : undefined;
      const previous = open.at(-1) as (SseStream & { token?: string }) | undefined;
      const stream = (await openSse(server, "/v1/stacks/bench/feed/stream", {
        token: token ?? previous?.token ?? adminToken,
      })) as SseStream & { token?: string };
      stream.token = token ?? previous?.token ?? adminToken;
      open.push(stream);
    }
    const measured = await openSse(server, "/v1/stacks/bench/feed/stream", { token: adminToken });
    open.push(measured);

    // latency from this process: the time of the append is in the entry
    const local: number[] = [];
    measured.onEvent = (event) => {
      const data = (JSON.parse(event.data) as { data: { t?: number } }).data;
      if (data.t !== undefined) local.push(performance.now() - data.t);
    };
    for (let i = 0; i < latencyEntries; i++) {
      await store.appendFeed([
        { stack: "bench", kind: "log", data: { line: `l${i}`, t: performance.now() } },
      ]);
      await sleep(2 + Math.random() * 6);
    }
    await measured.until(() => local.length >= latencyEntries, 30_000);

    // latency from another process (Date.now: ms resolution)
    const remote: number[] = [];
    measured.onEvent = (event) => {
      const data = (JSON.parse(event.data) as { data: { wall?: number } }).data;
      if (data.wall !== undefined) remote.push(Date.now() - data.wall);
    };
    const script = `
      const { openSqliteStore, storeFile } = await import(${JSON.stringify(path.resolve("src/store/sqlite.ts"))});
      const store = openSqliteStore(storeFile(${JSON.stringify(kitchen)}));
      for (let i = 0; i < 100; i++) {
        await store.appendFeed([{ stack: "bench", kind: "log", data: { line: "cli " + i, wall: Date.now() } }]);
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 60));
      }
      await store.close();`;
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    await measured.until(() => remote.length >= 100, 10_000);
    for (const stream of open) stream.close();
    open.length = 0;

    // throughput: live, then a backlog
    const total = 100_000;
    const first = (await store.lastFeedId()) + 1;
    const live = await openSse(server, "/v1/stacks/bench/feed/stream", { token: adminToken });
    open.push(live);
    let received = 0;
    live.onEvent = () => {
      received++;
    };
    const started = performance.now();
    for (let i = 0; i < total; i += 500) {
      const batch: FeedInput[] = Array.from({ length: 500 }, (_, j) => ({
        stack: "bench",
        kind: "phase",
        subject: "event:1",
        data: { instance: `app${(i + j) % 200}`, phase: "converging", done: j, total: 500 },
      }));
      await store.appendFeed(batch);
    }
    const appended = performance.now();
    await live.until(() => received >= total, 120_000);
    const liveSeconds = (performance.now() - started) / 1000;
    live.close();
    const backlog = await openSse(server, `/v1/stacks/bench/feed/stream?after=${first - 1}`, {
      token: adminToken,
    });
    open.push(backlog);
    let read = 0;
    backlog.onEvent = () => {
      read++;
    };
    const backlogStart = performance.now();
    await backlog.until(() => read >= total, 120_000);
    const backlogSeconds = (performance.now() - backlogStart) / 1000;
    backlog.close();

    // the simulated job with reconnects
    const job = await simulatedJob(
      { ...server, adminToken },
      { instances: 200, linesPerInstance: 60, pauseMs: 200, stack: "bench" },
    );
    const unique = new Set(job.received);
    const lost = job.written.filter((id) => !unique.has(id)).length;
    const repeated = job.received.length - unique.size;

    const result = {
      local: stats(local),
      remote: stats(remote),
      liveRate: total / liveSeconds,
      appendRate: total / ((appended - started) / 1000),
      backlogRate: total / backlogSeconds,
      job: { lines: job.written.length, reconnects: job.reconnects, lost, repeated },
    };
    const f = (s: Stats) => `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)} ms (${s.count})`;
    console.log("\n### The feed's live streams (one server; its clients in the same process)\n");
    console.log("| measure | figure |\n| --- | --- |");
    console.log(
      `| append → received, the server's own runs, ${others} other streams open: p50 / p99 | ${f(result.local)} |`,
    );
    console.log(`| append → received, another process (250 ms poll): p50 / p99 | ${f(result.remote)} |`);
    console.log(
      `| one stream, live: entries/s (appends ran at ${result.appendRate.toFixed(0)}/s) | ${result.liveRate.toFixed(0)} |`,
    );
    console.log(`| one stream, a 100,000-entry backlog: entries/s | ${result.backlogRate.toFixed(0)} |`);
    console.log(
      `| 200 instances × 60 lines (20-minute job) read across ${job.reconnects} reconnects: lines lost / repeated | ${lost} / ${repeated} (of ${job.written.length}) |`,
    );
    return result;
  } finally {
    for (const stream of open) stream.close();
    await server.close();
    await fs.rm(kitchen, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await benchFeed();
