import { execFile, spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { latencyRelay } from "./latency-relay.ts";
import { writeAnsiblePlaybook } from "./peers.ts";
import { writeWorkload } from "./workload.ts";

// `galley push` of the reference workload to local container hosts (galley hosts up), with and
// without added round-trip latency, and Ansible on the same hosts when --peers is given.

const child = fileURLToPath(new URL("./child.js", import.meta.url));
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));
/** where the workload lives on every host */
const target = "/srv/bench";

export interface PushBenchOptions {
  sizes: number[];
  hostCounts: number[];
  latencies: number[];
  runs: number;
  peers: boolean;
  /** called with each row as soon as it is measured */
  onRow?: (row: PushRow) => void;
}

export interface PushRow {
  tool: string;
  n: number;
  hosts: number;
  latencyMs: number;
  phase: string;
  seconds: number;
  fastest: number;
  runs: number;
  /** slowest host's own time, from the report */
  hostSeconds: number;
  /** fastest host's own time */
  fastestHostSeconds: number;
  changed: number;
}

interface Fleet {
  work: string;
  names: string[];
  addresses: Map<string, string>;
  key: string;
  knownHosts: string;
}

/** Runs the push benchmark and returns its rows; the hosts are made here and removed at the end. */
export async function benchPush(options: PushBenchOptions): Promise<PushRow[]> {
  const work = await fs.mkdtemp("/tmp/galley-bench-push-");
  const count = Math.max(...options.hostCounts);
  const rows: PushRow[] = [];
  const add = (...measured: PushRow[]) => {
    rows.push(...measured);
    for (const row of measured) options.onRow?.(row);
  };
  run(["hosts", "up", String(count), "--init", "sysv"], work, "inherit");
  const relays: { close(): Promise<void> }[] = [];
  try {
    const fleet = await readFleet(work);
    // one inventory per latency: without added latency the hosts are reached directly, with it
    // through a relay each
    const inventories = new Map<number, string>();
    for (const latencyMs of options.latencies) {
      const endpoints = new Map<string, { address: string; port: number }>();
      for (const name of fleet.names) {
        const address = fleet.addresses.get(name)!;
        if (latencyMs === 0) endpoints.set(name, { address, port: 22 });
        else {
          const relay = await latencyRelay({ host: address, port: 22 }, latencyMs);
          relays.push(relay);
          endpoints.set(name, { address: "127.0.0.1", port: relay.port });
        }
      }
      inventories.set(latencyMs, await writeInventory(fleet, latencyMs, endpoints));
    }
    const [fastest] = [...options.latencies].sort((x, y) => x - y);
    for (const n of options.sizes) {
      const kitchen = path.join(work, `kitchen-${n}`);
      await writeWorkload(kitchen, target, n);
      for (const hosts of options.hostCounts) {
        const selected = fleet.names.slice(0, hosts);
        const push = (latencyMs: number) => () =>
          galleyPush(
            ["push", "-i", inventories.get(latencyMs)!, "--limit", selected.join(","), "bench", "--json"],
            kitchen,
          );
        // the first converge writes every resource one after the other: over an added 100 ms that
        // takes minutes at N = 1000, so it is measured at the lowest latency only
        reset(work, selected);
        add({
          tool: "galley push",
          n,
          hosts,
          latencyMs: fastest!,
          phase: "first",
          ...(await repeat(1, push(fastest!))),
        });
        for (const latencyMs of options.latencies) {
          const at = { tool: "galley push", n, hosts, latencyMs };
          add({ ...at, phase: "no-op", ...(await repeat(options.runs, push(latencyMs))) });
          add({
            ...at,
            phase: "1% drift",
            ...(await repeat(options.runs, () => {
              drift(work, selected, n);
              return push(latencyMs)();
            })),
          });
        }
        // Ansible runs one SSH command or more per loop item: minutes per run at N = 1000 or with
        // added latency, so it is compared at N = 100 and the lowest latency
        if (options.peers && n <= 100)
          await ansible(add, work, fleet, selected, inventories.get(fastest!)!, n, fastest!, options.runs);
      }
    }
  } finally {
    await Promise.all(relays.map((relay) => relay.close()));
    run(["hosts", "down"], work, "inherit");
    await fs.rm(work, { recursive: true, force: true });
  }
  return rows;
}

type Sample = Pick<PushRow, "seconds" | "hostSeconds" | "fastestHostSeconds" | "changed">;

async function repeat(count: number, once: () => Sample | Promise<Sample>) {
  const samples: Sample[] = [];
  for (let i = 0; i < count; i++) samples.push(await once());
  samples.sort((a, b) => a.seconds - b.seconds);
  return { ...samples[Math.floor((samples.length - 1) / 2)]!, fastest: samples[0]!.seconds, runs: count };
}

/** Runs a command without blocking this process: the latency relays live in its event loop. */
function spawnAsync(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) {
  return new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(command, args, { ...options, encoding: "utf8", maxBuffer: 1 << 28 }, (error, stdout, stderr) => {
      const code = error && typeof error.code === "number" ? error.code : error ? 1 : 0;
      resolve({ status: code, stdout, stderr });
    });
  });
}

async function galleyPush(args: string[], cwd: string): Promise<Sample> {
  const started = performance.now();
  const result = await spawnAsync(process.execPath, [child, ...args], { cwd });
  const seconds = (performance.now() - started) / 1000;
  if (result.status !== 0)
    throw new Error(
      `galley ${args.join(" ")} exited ${result.status}: ${result.stderr}${result.stdout.slice(0, 2000)}`,
    );
  const { hosts } = JSON.parse(result.stdout) as {
    hosts: Record<string, { durationMs: number; summary: { changed: number } }>;
  };
  const reports = Object.values(hosts);
  return {
    seconds,
    hostSeconds: Math.max(...reports.map((r) => r.durationMs)) / 1000,
    fastestHostSeconds: Math.min(...reports.map((r) => r.durationMs)) / 1000,
    changed: reports.reduce((sum, r) => sum + r.summary.changed, 0),
  };
}

function run(args: string[], cwd: string, stdio: "inherit" | "pipe" = "pipe"): string {
  const result = spawnSync(process.execPath, [galleyBin, ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", stdio === "inherit" ? "ignore" : "pipe", stdio],
  });
  if (result.status !== 0)
    throw new Error(`galley ${args.join(" ")} exited ${result.status}: ${result.stderr ?? ""}`);
  return result.stdout ?? "";
}

/** Removes the workload and Galley's state from the hosts, for a first converge. */
function reset(work: string, names: string[]): void {
  for (const name of names) run(["hosts", "exec", name, "--", "rm", "-rf", target, "/var/lib/galley"], work);
}

/** Changes 1% of the files by hand on every host. */
function drift(work: string, names: string[], n: number): void {
  const dirs = n / 10;
  const files = Array.from(
    { length: Math.max(1, Math.round(n / 100)) },
    (_, i) => `${target}/d${(i * 100) % dirs}/file${i * 100}.txt`,
  );
  const script = files.map((f) => `echo 'changed by hand' > ${f}`).join("; ");
  for (const name of names) run(["hosts", "exec", name, "--", "sh", "-c", script], work);
}

async function readFleet(work: string): Promise<Fleet> {
  const dir = path.join(work, ".galley", "hosts");
  const inventory = parse(await fs.readFile(path.join(dir, "inventory.yaml"), "utf8")) as {
    hosts: Record<string, { address: string }>;
  };
  const names = Object.keys(inventory.hosts);
  return {
    work,
    names,
    addresses: new Map(names.map((name) => [name, inventory.hosts[name]!.address])),
    key: path.join(dir, "id_ed25519"),
    knownHosts: path.join(dir, "known_hosts"),
  };
}

/** An inventory that reaches every host at its endpoint (its relay, or itself); known_hosts to match. */
async function writeInventory(
  fleet: Fleet,
  latencyMs: number,
  endpoints: Map<string, { address: string; port: number }>,
): Promise<string> {
  const dir = path.join(fleet.work, `latency-${latencyMs}`);
  await fs.mkdir(dir, { recursive: true });
  const known: string[] = [];
  for (const line of (await fs.readFile(fleet.knownHosts, "utf8")).split("\n")) {
    const [hostField, ...key] = line.split(" ");
    const names = (hostField ?? "").split(",");
    const name = [...fleet.addresses].find(([, address]) => names.includes(address))?.[0];
    const endpoint = name ? endpoints.get(name) : undefined;
    if (endpoint) {
      const field = endpoint.port === 22 ? endpoint.address : `[${endpoint.address}]:${endpoint.port}`;
      known.push(`${field} ${key.join(" ")}`);
    }
  }
  await fs.writeFile(path.join(dir, "known_hosts"), `${known.join("\n")}\n`);
  const hosts = Object.fromEntries(fleet.names.map((name) => [name, endpoints.get(name)!]));
  const inventory = { connection: { user: "root", key: fleet.key, known_hosts: "known_hosts" }, hosts };
  const file = path.join(dir, "inventory.yaml");
  await fs.writeFile(file, stringify(inventory));
  return file;
}

/** ansible-playbook on the same hosts through the same relays: default settings, then pipelining with forks = hosts. */
async function ansible(
  add: (...rows: PushRow[]) => void,
  work: string,
  fleet: Fleet,
  names: string[],
  inventory: string,
  n: number,
  latencyMs: number,
  runs: number,
): Promise<void> {
  if (spawnSync("ansible-playbook", ["--version"]).status !== 0) return;
  const dir = path.join(path.dirname(inventory), `ansible-${n}`);
  const playbook = await writeAnsiblePlaybook(dir, target, n);
  const endpoints = parse(await fs.readFile(inventory, "utf8")) as {
    hosts: Record<string, { address: string; port: number }>;
  };
  const ini = names.map((name) => {
    const { address, port } = endpoints.hosts[name]!;
    return `${name} ansible_host=${address} ansible_port=${port} ansible_user=root ansible_python_interpreter=/usr/bin/python3`;
  });
  const iniFile = path.join(dir, "hosts.ini");
  await fs.writeFile(iniFile, `[bench]\n${ini.join("\n")}\n`);
  for (const [label, env] of [
    ["ansible (defaults)", {}],
    [
      "ansible (pipelining, forks = hosts)",
      { ANSIBLE_PIPELINING: "True", ANSIBLE_FORKS: String(names.length) },
    ],
  ] as const) {
    const play = async (): Promise<Sample> => {
      const started = performance.now();
      const result = await spawnAsync(
        "ansible-playbook",
        ["-i", iniFile, "--private-key", fleet.key, playbook],
        {
          cwd: dir,
          env: {
            ...process.env,
            ...env,
            ANSIBLE_SSH_ARGS: `-o UserKnownHostsFile=${path.join(path.dirname(inventory), "known_hosts")} -o StrictHostKeyChecking=yes -o ControlMaster=auto -o ControlPersist=60s`,
          },
        },
      );
      const seconds = (performance.now() - started) / 1000;
      if (result.status !== 0)
        throw new Error(`ansible-playbook exited ${result.status}: ${result.stdout.slice(-3000)}`);
      const changed = [...result.stdout.matchAll(/changed=(\d+)/g)].reduce((sum, m) => sum + Number(m[1]), 0);
      return { seconds, hostSeconds: seconds, fastestHostSeconds: seconds, changed };
    };
    const at = { tool: label, n, hosts: names.length, latencyMs };
    reset(work, names);
    add({ ...at, phase: "first", ...(await repeat(1, play)) });
    add({ ...at, phase: "no-op", ...(await repeat(Math.min(runs, 3), play)) });
  }
}
