import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { writePuppetManifest } from "./peers.ts";
import { writeWorkload } from "./workload.ts";

// `npm run bench [-- --sizes 100,1000] [--runs 7] [--only solo|push|deploy|agents|feed|panel] [--lines 100000] [--hosts 1,10] [--latency 0,100] [--peers] [--secrets N] [--instances 10]`:
// solo converges of the reference workload, then (as root) `galley push` of it to local container
// hosts; whole processes timed. The no-op and drift phases run `--runs` times: this machine's speed
// varies by a third from minute to minute, so the median is the figure and the fastest run is shown
// beside it. --peers also runs `puppet apply` (solo) and `ansible-playbook` (push) where installed.
// --secrets N gives the solo workload N sensitive attributes, held (base64) by every tenth template.
// deploy (root): the webapp app deployed to --instances app instances behind HAProxy with each
// strategy, then rolled back, under load (bench/deploy.ts).
// agents: simulated agents (--agents 1000,2000,4000, --seconds per phase) against one server
// (bench/agents.ts): keepalive, report and API latency, the server's CPU and memory.
// feed: the feed's event streams (bench/feed.ts): append → client latency with 50 other streams
// open, entries/s to one stream, and a simulated 200-instance job read across reconnects.
// panel: the web panel in Chromium (bench/panel.ts): a --lines (100,000) line log opened, and an
// agent's connection and drift run from its message to the screen.
const child = fileURLToPath(new URL("./child.js", import.meta.url));
const arg = (name: string) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const list = (name: string, fallback: number[]) => arg(name)?.split(",").map(Number) ?? fallback;
const sizes = list("--sizes", [100, 1000]);
const runs = Number(arg("--runs") ?? 7);
const only = arg("--only");
const peers = process.argv.includes("--peers");
const secrets = Number(arg("--secrets") ?? 0);
const instances = Number(arg("--instances") ?? 10);
/** whether this part runs: all of them without --only */
const wants = (part: "solo" | "push" | "deploy" | "agents" | "feed" | "panel") =>
  only === undefined || only === part;

interface Sample {
  phase: string;
  /** median over the runs */
  seconds: number;
  fastest: number;
  runs: number;
  maxRssMb: number;
  changed: number;
  resources: number;
}

type Run = Omit<Sample, "phase" | "resources" | "fastest" | "runs">;

/** The median run (by wall time) of `count` runs, and the fastest time. */
async function repeat(count: number, once: () => Promise<Run>) {
  const samples: Run[] = [];
  for (let i = 0; i < count; i++) samples.push(await once());
  samples.sort((a, b) => a.seconds - b.seconds);
  return { ...samples[Math.floor((samples.length - 1) / 2)]!, fastest: samples[0]!.seconds, runs: count };
}

function galley(args: string[], cwd: string): Run {
  const started = performance.now();
  const result = spawnSync(process.execPath, [child, ...args], {
    cwd,
    encoding: "utf8",
    maxBuffer: 256 * 1024 * 1024,
  });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0)
    throw new Error(`galley ${args.join(" ")} exited ${result.status}: ${result.stderr}`);
  const stats = JSON.parse(/@@bench (.*)/.exec(result.stderr)![1]!) as { maxRssKb: number };
  const report = JSON.parse(result.stdout) as { summary: { changed: number } };
  return { seconds, maxRssMb: stats.maxRssKb / 1024, changed: report.summary.changed };
}

async function drift(target: string, n: number): Promise<void> {
  const dirs = n / 10;
  const count = Math.max(1, Math.round(n / 100));
  for (let i = 0; i < count; i++) {
    const index = i * 100;
    await fs.writeFile(path.join(target, `d${index % dirs}`, `file${index}.txt`), "changed by hand\n");
  }
}

/** puppet apply of the same workload: first converge and no-op, whole process. */
async function puppet(n: number): Promise<{ first: number; noop: number } | undefined> {
  if (spawnSync("puppet", ["--version"]).status !== 0) return undefined;
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "galley-bench-puppet-"));
  try {
    const manifest = await writePuppetManifest(path.join(work, "manifest"), path.join(work, "target"), n);
    const once = () => {
      const started = performance.now();
      const result = spawnSync("puppet", ["apply", "--color=false", manifest], { encoding: "utf8" });
      if (result.status !== 0) throw new Error(`puppet apply exited ${result.status}: ${result.stderr}`);
      return (performance.now() - started) / 1000;
    };
    const first = once();
    const noops = Array.from({ length: Math.min(runs, 3) }, once).sort((a, b) => a - b);
    return { first, noop: noops[Math.floor((noops.length - 1) / 2)]! };
  } finally {
    await fs.rm(work, { recursive: true, force: true });
  }
}

const line = (widths: number[], cells: string[]) =>
  cells.map((cell, i) => (i === 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(" ");

if (wants("solo")) {
  const rows: (Sample & { n: number })[] = [];
  const puppetRuns = new Map<number, { first: number; noop: number }>();
  for (const n of sizes) {
    const work = await fs.mkdtemp(path.join(os.tmpdir(), "galley-bench-"));
    const target = path.join(work, "target");
    const resources = await writeWorkload(work, target, n, secrets);
    const args = ["apply", "bench", "--json", "--state-dir", path.join(work, "state")];
    rows.push({
      n,
      phase: "first converge",
      resources,
      ...(await repeat(1, async () => galley(args, work))),
    });
    rows.push({
      n,
      phase: "no-op rerun",
      resources,
      ...(await repeat(runs, async () => galley(args, work))),
    });
    const drifted = await repeat(runs, async () => {
      await drift(target, n);
      return galley(args, work);
    });
    rows.push({ n, phase: "1% drift", resources, ...drifted });
    await fs.rm(work, { recursive: true, force: true });
    const measured = peers ? await puppet(n) : undefined;
    if (measured) puppetRuns.set(n, measured);
  }
  const columns = [
    "N",
    "phase",
    "resources",
    "changed",
    "runs",
    "median s",
    "fastest s",
    "res/s",
    "peak RSS MB",
  ];
  const widths = [5, 15, 9, 8, 5, 9, 10, 9, 12];
  const withSecrets = secrets > 0 ? `, ${secrets} secrets` : "";
  console.log(
    `galley solo apply, whole process (node ${process.version}, ${os.cpus().length} cores${withSecrets})\n`,
  );
  console.log(line(widths, columns));
  for (const row of rows) {
    console.log(
      line(widths, [
        String(row.n),
        row.phase,
        String(row.resources),
        String(row.changed),
        String(row.runs),
        row.seconds.toFixed(3),
        row.fastest.toFixed(3),
        String(Math.round(row.resources / row.seconds)),
        row.maxRssMb.toFixed(1),
      ]),
    );
  }
  for (const [n, p] of puppetRuns) {
    const first = rows.find((r) => r.n === n && r.phase === "first converge")!;
    const noop = rows.find((r) => r.n === n && r.phase === "no-op rerun")!;
    console.log(
      `\nN = ${n}, puppet apply: first ${p.first.toFixed(2)} s (galley ${(first.seconds / p.first).toFixed(3)} ×), no-op ${p.noop.toFixed(2)} s (galley median ${(noop.seconds / p.noop).toFixed(3)} ×, fastest ${(noop.fastest / p.noop).toFixed(3)} ×)`,
    );
  }
}

if (wants("push")) {
  if (process.getuid?.() !== 0) {
    console.log("\npush runs skipped: local container hosts need root (sudo npm run bench)");
  } else {
    const { benchPush } = await import("./push.ts");
    const columns = [
      "N",
      "tool",
      "hosts",
      "RTT+ms",
      "phase",
      "changed",
      "runs",
      "median s",
      "fastest s",
      "host s (fastest–slowest)",
    ];
    const widths = [5, 36, 5, 6, 9, 7, 4, 9, 9, 24];
    console.log(
      `\npush to local container hosts over SSH, whole process; RTT+ms is the added round-trip latency\n`,
    );
    console.log(line(widths, columns));
    // each row as soon as it is measured: a run with --peers takes long
    const pushRows = await benchPush({
      sizes,
      hostCounts: list("--hosts", [1, 10]),
      latencies: list("--latency", [0, 100]),
      runs: Math.min(runs, 3),
      peers,
      onRow: (row) =>
        console.log(
          line(widths, [
            String(row.n),
            row.tool,
            String(row.hosts),
            String(row.latencyMs),
            row.phase,
            String(row.changed),
            String(row.runs),
            row.seconds.toFixed(2),
            row.fastest.toFixed(2),
            row.tool === "galley push"
              ? `${row.fastestHostSeconds.toFixed(2)}–${row.hostSeconds.toFixed(2)}`
              : "",
          ]),
        ),
    });
    for (const row of pushRows.filter((r) => r.tool !== "galley push" && r.phase === "no-op")) {
      const ours = pushRows.find(
        (r) =>
          r.tool === "galley push" &&
          r.phase === "no-op" &&
          r.n === row.n &&
          r.hosts === row.hosts &&
          r.latencyMs === row.latencyMs,
      );
      if (ours)
        console.log(
          `no-op, N = ${row.n}, ${row.hosts} hosts, +${row.latencyMs} ms: galley ${(ours.seconds / row.seconds).toFixed(3)} × ${row.tool}`,
        );
    }
  }
}

if (wants("deploy")) {
  if (process.getuid?.() !== 0) {
    console.log("\ndeploy runs skipped: local container hosts need root (sudo npm run bench)");
  } else {
    const { benchDeploy, rollbackTargetSeconds } = await import("./deploy.ts");
    const columns = [
      "N",
      "strategy",
      "deploy s",
      "own s",
      "served",
      "failed",
      "rollback s",
      "own s",
      "served",
      "failed",
      "on disk",
      "× 5 s",
    ];
    const widths = [3, 9, 8, 6, 7, 6, 10, 6, 7, 6, 7, 6];
    console.log(
      `\ngalley deploy and galley rollback of the webapp app to N app instances behind HAProxy (container hosts), under load through HAProxy; whole process (own s: the controller's record, start to end); on disk: instances whose rollback prepare changed nothing; × 5 s: rollback process time against the ${rollbackTargetSeconds} s target\n`,
    );
    console.log(line(widths, columns));
    const result = await benchDeploy({
      instances,
      strategies: ["rolling", "pilot", "parallel", "cutover"],
      log: (text) => process.stderr.write(`bench deploy: ${text}\n`),
      onRow: (row) =>
        console.log(
          line(widths, [
            String(row.instances),
            row.strategy,
            row.deploy.seconds.toFixed(1),
            row.deploy.ownSeconds.toFixed(1),
            String(row.deploy.served),
            String(row.deploy.failed),
            row.rollback.seconds.toFixed(1),
            row.rollback.ownSeconds.toFixed(1),
            String(row.rollback.served),
            String(row.rollback.failed),
            `${row.rollback.unchangedPrepares}/${row.instances}`,
            (row.rollback.seconds / rollbackTargetSeconds).toFixed(2),
          ]) +
            (row.deploy.status !== "succeeded" || row.rollback.status !== "succeeded"
              ? `  (deploy ${row.deploy.status}, rollback ${row.rollback.status})`
              : ""),
        ),
    });
    const perPhase = (phases: Record<string, number>) =>
      Object.entries(phases)
        .map(([phase, seconds]) => `${phase} ${seconds.toFixed(1)}`)
        .join(", ");
    console.log("\nseconds per instance in each phase (mean; the instances of one batch run at once):");
    for (const row of result.rows) {
      console.log(`  ${row.strategy} deploy: ${perPhase(row.deploy.phases)}`);
      console.log(`  ${row.strategy} rollback: ${perPhase(row.rollback.phases)}`);
    }
    console.log(
      `\nstack up (lb1 + ${result.instances} app instances, first deployment included): ${result.stackUpSeconds.toFixed(1)} s`,
    );
  }
}

if (wants("agents")) {
  const { benchAgents } = await import("./agents.ts");
  await benchAgents({
    counts: (arg("--agents") ?? "1000,2000,4000,8000").split(",").map(Number),
    seconds: Number(arg("--seconds") ?? 60),
  });
}

if (wants("feed")) {
  const { benchFeed } = await import("./feed.ts");
  await benchFeed();
}

if (wants("panel")) {
  const { benchPanel } = await import("./panel.ts");
  await benchPanel({ lines: Number(arg("--lines") ?? 100_000), runs: Math.min(runs, 5) });
}
