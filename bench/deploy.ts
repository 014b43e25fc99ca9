import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { type LoadResult, startLoad } from "../test/support/load.ts";

// Deployments of the webapp example's app to N app instances behind HAProxy (no database: the app
// answers without one), on local container hosts: per strategy, a deploy of a new revision and a
// rollback to the release before it (still on disk: switch and restart only), both under load
// through HAProxy. Whole `galley` processes timed; the controller's own time from the record.

const example = fileURLToPath(new URL("../examples/webapp", import.meta.url));
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

/** The rollback target of issue 12: 10 instances rolled back in 5 s or less. */
export const rollbackTargetSeconds = 5;

export interface DeployBenchOptions {
  instances: number;
  strategies: readonly string[];
  /** load-generator connections through HAProxy */
  connections?: number;
  /** a line of progress */
  log?: (line: string) => void;
  /** called with each row as soon as it is measured */
  onRow?: (row: DeployRow) => void;
}

/** One phase (deploy or rollback) of one strategy. */
export interface DeployPhaseSample {
  /** the deployment's id */
  id: number;
  /** the whole `galley deploy|rollback` process */
  seconds: number;
  /** the controller's own time: the record's start to its end */
  ownSeconds: number;
  status: string;
  /** responses through HAProxy while it ran, and the failed ones (errors + non-2xx) */
  served: number;
  failed: number;
  /** instances whose prepare changed nothing (the release was on disk) */
  unchangedPrepares: number;
  /** seconds per instance in each phase (drain, prepare, switch…), the mean over the instances */
  phases: Record<string, number>;
}

export interface DeployRow {
  strategy: string;
  instances: number;
  deploy: DeployPhaseSample;
  rollback: DeployPhaseSample;
}

export interface DeployBenchResult {
  instances: number;
  stackUpSeconds: number;
  rows: DeployRow[];
}

interface Deployment {
  id: number;
  status: string;
  startedAt?: string;
  finishedAt?: string;
  note?: string;
  steps: {
    batch: number;
    instance: string;
    phase: string;
    status: string;
    log?: string;
    startedAt: string;
    finishedAt?: string;
  }[];
}

/** Runs the deployment benchmark; the hosts are made here and removed at the end. */
export async function benchDeploy(options: DeployBenchOptions): Promise<DeployBenchResult> {
  const log = options.log ?? (() => {});
  const kitchen = await fs.mkdtemp("/tmp/galley-bench-deploy-");
  await fs.cp(example, kitchen, { recursive: true, filter: (src) => !src.includes(`${path.sep}.galley`) });
  await writeStack(kitchen, options.instances);
  makeRepo(kitchen);
  const rows: DeployRow[] = [];
  try {
    log(`stack up: lb1 and ${options.instances} app instances`);
    const started = performance.now();
    const up = await galley(["stack", "up", "webapp", "--json"], kitchen);
    const stackUpSeconds = (performance.now() - started) / 1000;
    if (up.code !== 0) throw new Error(`galley stack up exited ${up.code}: ${up.stderr.slice(-3000)}`);
    const lb = (JSON.parse(up.stdout) as { instances: { name: string; address: string }[] }).instances.find(
      (i) => i.name === "lb1",
    )!.address;
    // each rollback goes to the release the round before deployed: the newest releases are the
    // ones `keep` leaves on disk (it prunes by release number, so release 1 goes by the third round)
    const list = await galley(["deployments", "hello", "--stack", "webapp", "--json"], kitchen);
    let previous = (JSON.parse(list.stdout) as { deployments: { id: number }[] }).deployments[0]!.id;
    const load = () =>
      startLoad({ url: `http://${lb}/`, byBody: /hello from (\S+)/, connections: options.connections ?? 4 });
    for (const [index, strategy] of options.strategies.entries()) {
      await newRevision(kitchen, `// bench revision ${index + 1} (${strategy})\n`);
      log(`${strategy}: deploy`);
      const deploy = await underLoad(
        load,
        ["deploy", "hello", "--stack", "webapp", "--strategy", strategy],
        kitchen,
      );
      log(`${strategy}: rollback`);
      const rollback = await underLoad(
        load,
        ["rollback", "hello", "--stack", "webapp", "--strategy", strategy, "--to", String(previous)],
        kitchen,
      );
      previous = deploy.id;
      const row = { strategy, instances: options.instances, deploy, rollback };
      rows.push(row);
      options.onRow?.(row);
    }
    return { instances: options.instances, stackUpSeconds, rows };
  } finally {
    await galley(["hosts", "down"], kitchen);
    await fs.rm(kitchen, { recursive: true, force: true });
  }
}

/** The webapp stack with lb1 and app1…appN only (no database, no load-based instance). */
async function writeStack(kitchen: string, instances: number): Promise<void> {
  const file = path.join(kitchen, "stacks", "webapp.yaml");
  const stack = parse(await fs.readFile(file, "utf8")) as { instances: Record<string, unknown>[] };
  const provider = { type: "container", init: "systemd" };
  stack.instances = [
    { name: "lb1", layers: ["lb"], provider },
    ...Array.from({ length: instances }, (_, i) => ({ name: `app${i + 1}`, layers: ["app"], provider })),
  ];
  await fs.writeFile(file, stringify(stack));
}

function makeRepo(kitchen: string): void {
  const made = spawnSync("bash", [path.join(kitchen, "make-app-repo.sh")], { encoding: "utf8" });
  if (made.status !== 0) throw new Error(`make-app-repo.sh exited ${made.status}: ${made.stderr}`);
}

async function newRevision(kitchen: string, line: string): Promise<void> {
  await fs.appendFile(path.join(kitchen, "app", "server.js"), line);
  makeRepo(kitchen);
}

/** `galley ARGS --json` timed while the load runs through HAProxy. */
async function underLoad(
  load: () => ReturnType<typeof startLoad>,
  args: string[],
  kitchen: string,
): Promise<DeployPhaseSample> {
  const running = load();
  let result: { code: number; stdout: string; stderr: string };
  let seconds: number;
  let counts: LoadResult;
  try {
    const started = performance.now();
    result = await galley([...args, "--json"], kitchen);
    seconds = (performance.now() - started) / 1000;
  } finally {
    counts = await running.stop();
  }
  const deployment = (JSON.parse(result.stdout || "{}") as { deployment?: Deployment }).deployment;
  if (!deployment)
    throw new Error(`galley ${args.join(" ")} exited ${result.code}: ${result.stderr.slice(-3000)}`);
  const own =
    deployment.startedAt && deployment.finishedAt
      ? (Date.parse(deployment.finishedAt) - Date.parse(deployment.startedAt)) / 1000
      : Number.NaN;
  // a phase's time: from the instance's step before it (or its batch's start) to its own end; a
  // step's own start comes after the event it records (the prepare and switch runs)
  const phases: Record<string, number> = {};
  const finished = deployment.steps
    .filter((s) => s.status !== "running" && s.finishedAt)
    .sort((a, b) => Date.parse(a.finishedAt!) - Date.parse(b.finishedAt!));
  const instances = new Set(finished.map((s) => s.instance)).size || 1;
  const batchStart = (batch: number) =>
    Math.max(
      Date.parse(deployment.startedAt ?? finished[0]?.startedAt ?? ""),
      ...finished.filter((s) => s.batch < batch).map((s) => Date.parse(s.finishedAt!)),
    );
  const last = new Map<string, number>();
  for (const step of finished) {
    const end = Date.parse(step.finishedAt!);
    const from = last.get(step.instance) ?? batchStart(step.batch);
    phases[step.phase] = (phases[step.phase] ?? 0) + (end - from) / 1000 / instances;
    last.set(step.instance, end);
  }
  return {
    id: deployment.id,
    seconds,
    ownSeconds: own,
    status: deployment.status,
    phases,
    served: counts.requests,
    failed: counts.errors + counts.non2xx,
    unchangedPrepares: deployment.steps.filter(
      (s) =>
        s.phase === "prepare" &&
        s.status === "succeeded" &&
        /^0 changed|nothing to prepare/.test(s.log ?? ""),
    ).length,
  };
}

/** Runs galley without blocking this process: the load generator lives in its event loop. */
function galley(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [galleyBin, ...args],
      { cwd, encoding: "utf8", maxBuffer: 1 << 28, env: { ...process.env, NO_COLOR: "1" } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
