import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { writeWorkload } from "./workload.ts";

// `npm run bench [-- --sizes 100,1000]`: solo converges of the reference workload, whole process timed.
const child = fileURLToPath(new URL("./child.ts", import.meta.url));
const sizesArg = process.argv.indexOf("--sizes");
const sizes = sizesArg > 0 ? process.argv[sizesArg + 1]!.split(",").map(Number) : [100, 1000];
// puppet apply of the same workload, no-op run at N = 1000, measured on this kind of machine (issue 2)
const puppetNoopSeconds = 3.6;

interface Sample {
  phase: string;
  seconds: number;
  maxRssMb: number;
  changed: number;
  resources: number;
}

function galley(args: string[], cwd: string): Omit<Sample, "phase" | "resources"> {
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
  rows.push({ n, phase: "first converge", resources, ...galley(args, work) });
  rows.push({ n, phase: "no-op rerun", resources, ...galley(args, work) });
  await drift(target, n);
  rows.push({ n, phase: "1% drift", resources, ...galley(args, work) });
  await fs.rm(work, { recursive: true, force: true });
}

const header = `${"N".padStart(5)}  ${"phase".padEnd(15)} ${"resources".padStart(9)} ${"changed".padStart(8)} ${"wall s".padStart(8)} ${"res/s".padStart(9)} ${"peak RSS MB".padStart(12)}`;
console.log(`galley solo apply, whole process (node ${process.version}, ${os.cpus().length} cores)\n`);
console.log(header);
for (const row of rows) {
  console.log(
    `${String(row.n).padStart(5)}  ${row.phase.padEnd(15)} ${String(row.resources).padStart(9)} ${String(row.changed).padStart(8)} ${row.seconds.toFixed(3).padStart(8)} ${Math.round(
      row.resources / row.seconds,
    )
      .toString()
      .padStart(9)} ${row.maxRssMb.toFixed(1).padStart(12)}`,
  );
}
const noop = rows.find((r) => r.n === 1000 && r.phase === "no-op rerun");
if (noop) {
  console.log(
    `\nno-op at N = 1000: ${noop.seconds.toFixed(3)} s = ${(noop.seconds / puppetNoopSeconds).toFixed(3)} × puppet apply's ${puppetNoopSeconds} s (target: under 0.1 ×)`,
  );
}
