import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import * as fs from "node:fs/promises";
import { request } from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { authPayload, type ServerMessage } from "../src/fleet/agent-protocol.ts";
import { openSqliteStore, storeFile } from "../src/store/sqlite.ts";

// The server under many agents (`npm run bench -- --only agents [--agents 1000,2000,4000,8000]
// [--seconds 60]`): one server process, and simulated agents in this process (each a real
// WebSocket with its own ed25519 key, authenticated like an agent) sending keepalives every 30 s
// and reports every 30 min, then at ten times that report rate, while an API client polls. The
// rates are the real ones; a phase lasts --seconds, not 30 minutes. Printed: p50/p99 of the
// keepalive round trip, the report → ack time and API calls, and the server's CPU (cores) and RSS.
// The simulated agents share the machine's two cores with the server: the figures are pessimistic.

const keepaliveMs = 30_000;
const reportMs = 30 * 60_000;

interface Server {
  child: ChildProcess;
  url: string;
  ca: string;
  token: string;
}

interface Phase {
  agents: number;
  reportRate: string;
  keepalive: Stats;
  report: Stats;
  api: Stats;
  cpuCores: number;
  rssMb: number;
  failures: number;
}

interface Stats {
  count: number;
  p50: number;
  p99: number;
}

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
  return { count: sorted.length, p50: at(0.5), p99: at(0.99) };
}

async function startServer(kitchen: string): Promise<Server> {
  const script = new URL("./agent-server.ts", import.meta.url).pathname;
  const child = spawn(process.execPath, [script, kitchen], { stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once("line", resolve);
    child.once("exit", (code) => reject(new Error(`the server exited ${code}`)));
  });
  const started = JSON.parse(line) as { url: string; ca: string; tokenFile: string };
  const token = (await fs.readFile(started.tokenFile, "utf8")).trim();
  return { child, url: started.url, ca: started.ca, token };
}

/** CPU seconds (user + system) and RSS of a process, from /proc. */
async function usage(pid: number): Promise<{ cpu: number; rssMb: number }> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return { cpu: ticks / 100, rssMb: rssKb / 1024 };
}

/** One simulated agent: a real channel, authenticated with its own key. */
class SimAgent {
  readonly name: string;
  ws: WebSocket | undefined;
  readonly #pending = new Map<number, number>();
  #seq = 0;
  #reportSeq = 0;
  readonly #acks = new Map<number, number>();

  constructor(name: string) {
    this.name = name;
  }

  async connect(server: Server, stack: string, key: KeyObject): Promise<void> {
    const ws = new WebSocket(`${server.url.replace("https", "wss")}/v1/agents/channel`, {
      ca: server.ca,
      perMessageDeflate: false,
    });
    this.ws = ws;
    await new Promise<void>((resolve, reject) => {
      ws.once("error", reject);
      ws.on("message", (data) => {
        const message = JSON.parse(String(data)) as ServerMessage;
        if (message.type === "hello") {
          const signature = sign(null, Buffer.from(authPayload(message.nonce, stack, this.name)), key);
          ws.send(
            JSON.stringify({
              type: "auth",
              stack,
              instance: this.name,
              signature: signature.toString("base64"),
              agent: "bench",
            }),
          );
        } else if (message.type === "welcome") resolve();
        else if (message.type === "refused") reject(new Error(message.error.message));
        else if (message.type === "keepalive") {
          const sent = this.#pending.get(message.seq);
          if (sent !== undefined) {
            this.#pending.delete(message.seq);
            SimAgent.keepalives.push(performance.now() - sent);
          }
        } else if (message.type === "ack") {
          const sent = this.#acks.get(message.seq);
          if (sent !== undefined) {
            this.#acks.delete(message.seq);
            SimAgent.reports.push(performance.now() - sent);
          }
        }
      });
    });
  }

  keepalive(): void {
    // far above the server's own keepalive counter, so an echo is told apart from its own
    const seq = 1_000_000_000 + ++this.#seq;
    this.#pending.set(seq, performance.now());
    this.ws?.send(JSON.stringify({ type: "keepalive", seq }));
  }

  report(): void {
    const seq = ++this.#reportSeq;
    const now = new Date().toISOString();
    this.#acks.set(seq, performance.now());
    this.ws?.send(
      JSON.stringify({
        type: "report",
        run: {
          seq,
          kind: "drift",
          mode: "enforce",
          bundle: "0".repeat(64),
          status: "ok",
          changed: 0,
          failed: 0,
          report: { summary: { changed: 0, unchanged: 120, failed: 0 }, durationMs: 840 },
          startedAt: now,
          finishedAt: now,
        },
      }),
    );
  }

  static keepalives: number[] = [];
  static reports: number[] = [];
}

function apiCall(server: Server, pathname: string): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${pathname}`,
      { ca: server.ca, headers: { authorization: `Bearer ${server.token}` } },
      (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200
            ? resolve(performance.now() - started)
            : reject(new Error(`${pathname}: HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** Runs one phase: `count` agents, keepalives every 30 s, reports at `reportEveryMs` each, for `seconds`. */
async function phase(
  server: Server,
  agents: SimAgent[],
  reportEveryMs: number,
  seconds: number,
): Promise<Omit<Phase, "agents" | "reportRate">> {
  SimAgent.keepalives = [];
  SimAgent.reports = [];
  const api: number[] = [];
  let failures = 0;
  const timers: NodeJS.Timeout[] = [];
  const stopAt = performance.now() + seconds * 1000;
  // each agent's first tick falls anywhere in its interval, as for agents started at different
  // times: the phase sees the real rates (1,000 agents: 33 keepalives and 0.56 reports a second)
  for (const agent of agents) {
    const tick = (every: number, fn: () => void) =>
      timers.push(
        setTimeout(() => {
          fn();
          timers.push(setInterval(fn, every));
        }, Math.random() * every),
      );
    tick(keepaliveMs, () => agent.keepalive());
    tick(reportEveryMs, () => agent.report());
  }
  const before = await usage(server.child.pid!);
  const startedWall = performance.now();
  let rssMb = before.rssMb;
  while (performance.now() < stopAt) {
    await Promise.all(
      ["/v1/agents", "/v1/health"].map((p) =>
        apiCall(server, p).then(
          (ms) => api.push(ms),
          () => {
            failures += 1;
          },
        ),
      ),
    );
    rssMb = Math.max(rssMb, (await usage(server.child.pid!)).rssMb);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  for (const timer of timers) clearTimeout(timer);
  const after = await usage(server.child.pid!);
  const cpuCores = (after.cpu - before.cpu) / ((performance.now() - startedWall) / 1000);
  // answers still in flight count toward the next phase's figures no more
  await new Promise((resolve) => setTimeout(resolve, 500));
  return {
    keepalive: stats(SimAgent.keepalives),
    report: stats(SimAgent.reports),
    api: stats(api),
    cpuCores,
    rssMb: Math.max(rssMb, after.rssMb),
    failures,
  };
}

function line(p: Phase): string {
  const f = (s: Stats) => `${s.p50.toFixed(1)} / ${s.p99.toFixed(1)} ms (${s.count})`;
  return `| ${p.agents} | ${p.reportRate} | ${f(p.keepalive)} | ${f(p.report)} | ${f(p.api)} | ${p.cpuCores.toFixed(2)} | ${p.rssMb.toFixed(0)} MB |`;
}

/** The benchmark: each agent count in turn, on one server, until a p99 passes 50 ms. */
export async function benchAgents(options: { counts: number[]; seconds: number }): Promise<Phase[]> {
  const kitchen = await fs.mkdtemp(path.join(os.tmpdir(), "galley-bench-agents-"));
  const server = await startServer(kitchen);
  const store = openSqliteStore(storeFile(kitchen));
  const agents: SimAgent[] = [];
  const results: Phase[] = [];
  console.log(
    "\n### Agents against one server\n\n| agents | reports | keepalive p50 / p99 | report → ack p50 / p99 | API p50 / p99 | server CPU (cores) | server RSS |\n| ---: | --- | --- | --- | --- | ---: | ---: |",
  );
  try {
    for (const count of options.counts) {
      while (agents.length < count) {
        const batch: Promise<void>[] = [];
        for (let i = 0; i < 50 && agents.length < count; i++) {
          const agent = new SimAgent(`a${agents.length}`);
          agents.push(agent);
          const { privateKey, publicKey } = generateKeyPairSync("ed25519");
          batch.push(
            store
              .registerAgent({
                stack: "bench",
                instance: agent.name,
                publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
              })
              .then(() => agent.connect(server, "bench", privateKey)),
          );
        }
        await Promise.all(batch);
      }
      let over = false;
      for (const [label, every] of [
        ["every 30 min", reportMs],
        ["every 3 min (10×)", reportMs / 10],
      ] as const) {
        const measured = {
          agents: count,
          reportRate: label,
          ...(await phase(server, agents, every, options.seconds)),
        };
        results.push(measured);
        console.log(line(measured));
        if (measured.keepalive.p99 > 50 || measured.report.p99 > 50 || measured.api.p99 > 50) over = true;
      }
      if (over) {
        console.log(`\np99 passed 50 ms at ${count} agents.`);
        break;
      }
      if (count === options.counts.at(-1))
        console.log(`\np99 stayed under 50 ms up to ${count} agents (the last count asked for).`);
    }
  } finally {
    for (const agent of agents) agent.ws?.terminate();
    await store.close();
    server.child.kill("SIGTERM");
    await new Promise((resolve) => server.child.once("exit", resolve));
    await fs.rm(kitchen, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => {
    const at = process.argv.indexOf(name);
    return at > 0 ? process.argv[at + 1] : undefined;
  };
  await benchAgents({
    counts: (arg("--agents") ?? "1000,2000,4000,8000").split(",").map(Number),
    seconds: Number(arg("--seconds") ?? 60),
  });
}
