import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { writeWorkload } from "./workload.ts";

// `npm run bench [-- --sizes 100,1000] [--runs 7]`: solo converges of the reference workload, whole
// process timed. The no-op and drift phases run `--runs` times: this machine's speed varies by a
// third from minute to minute, so the median is the figure and the fastest run is shown beside it.
const child = fileURLToPath(new URL("./child.js", import.meta.url));
const sizesArg = process.argv.indexOf("--sizes");
const sizes = sizesArg > 0 ? process.argv[sizesArg + 1]!.split(",").map(Number) : [100, 1000];
const runsArg = process.argv.indexOf("--runs");
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;
// puppet apply of the same workload, no-op run at N = 1000, measured on this kind of machine (issue 2)
const puppetNoopSeconds = 3.6;

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

const rows: (Sample & { n: number })[] = [];
for (const n of sizes) {
  const work = await fs.mkdtemp(path.join(os.tmpdir(), "galley-bench-"));
  const target = path.join(work, "target");
  const resources = await writeWorkload(work, target, n);
  const args = ["apply", "bench", "--json", "--state-dir", path.join(work, "state")];
  rows.push({ n, phase: "first converge", resources, ...(await repeat(1, async () => galley(args, work))) });
  rows.push({ n, phase: "no-op rerun", resources, ...(await repeat(runs, async () => galley(args, work))) });
  const drifted = await repeat(runs, async () => {
    await drift(target, n);
    return galley(args, work);
  });
  rows.push({ n, phase: "1% drift", resources, ...drifted });
  await fs.rm(work, { recursive: true, force: true });
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
const line = (cells: string[]) =>
  cells.map((cell, i) => (i === 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(" ");
console.log(`galley solo apply, whole process (node ${process.version}, ${os.cpus().length} cores)\n`);
console.log(line(columns));
for (const row of rows) {
  console.log(
    line([
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
const noop = rows.find((r) => r.n === 1000 && r.phase === "no-op rerun");
if (noop) {
  const ratio = (seconds: number) => (seconds / puppetNoopSeconds).toFixed(3);
  console.log(
    `\nno-op at N = 1000: median ${noop.seconds.toFixed(3)} s = ${ratio(noop.seconds)} × puppet apply's ${puppetNoopSeconds} s, fastest ${noop.fastest.toFixed(3)} s = ${ratio(noop.fastest)} × (target: under 0.1 ×)`,
  );
}
