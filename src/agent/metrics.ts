import * as fs from "node:fs/promises";

// What an agent reports of its host's load every metrics interval (the server scales load-based
// layers on it): CPU busy % since the last sample (from /proc/stat), memory used % (MemTotal −
// MemAvailable, from /proc/meminfo) and the 1-minute load average (/proc/loadavg).

/** The aggregate CPU counters of /proc/stat: jiffies idle (idle + iowait) and in all. */
export interface CpuTimes {
  idle: number;
  total: number;
}

/** One sample, as the `metrics` message carries it. */
export interface HostMetrics {
  cpu: number;
  memory: number;
  load: number;
}

/** The `cpu ` line of /proc/stat; undefined when there is none. */
export function parseCpuTimes(procStat: string): CpuTimes | undefined {
  const line = procStat.split("\n").find((l) => l.startsWith("cpu "));
  if (!line) return undefined;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest times are already in user and nice)
  const counted = fields.slice(0, 8).filter((n) => Number.isFinite(n));
  const total = counted.reduce((sum, n) => sum + n, 0);
  return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total };
}

/** CPU busy % between two samples (0 when no time passed). */
export function cpuPercent(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  if (total <= 0) return 0;
  return round(clamp((100 * (total - (after.idle - before.idle))) / total));
}

/** Memory used % from /proc/meminfo: (MemTotal − MemAvailable) / MemTotal. */
export function parseMemoryPercent(meminfo: string): number {
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(meminfo)?.[1] ?? Number.NaN);
  const total = field("MemTotal");
  const available = field("MemAvailable");
  if (!(total > 0) || !Number.isFinite(available)) return 0;
  return round(clamp((100 * (total - available)) / total));
}

/** The 1-minute load average of /proc/loadavg. */
export function parseLoad(loadavg: string): number {
  const load = Number(loadavg.trim().split(/\s+/)[0]);
  return Number.isFinite(load) ? load : 0;
}

/** Samples this machine; each CPU figure covers the time since the previous sample. */
export class MetricsSampler {
  #last: CpuTimes | undefined;

  /** Takes the first CPU reading, so that the first sample covers a real interval. */
  async start(): Promise<void> {
    this.#last = parseCpuTimes(await read("/proc/stat"));
  }

  async sample(): Promise<HostMetrics> {
    const [stat, meminfo, loadavg] = await Promise.all([
      read("/proc/stat"),
      read("/proc/meminfo"),
      read("/proc/loadavg"),
    ]);
    const now = parseCpuTimes(stat);
    const cpu = now && this.#last ? cpuPercent(this.#last, now) : 0;
    this.#last = now;
    return { cpu, memory: parseMemoryPercent(meminfo), load: parseLoad(loadavg) };
  }
}

function read(file: string): Promise<string> {
  return fs.readFile(file, "utf8").catch(() => "");
}

function clamp(percent: number): number {
  return Math.min(100, Math.max(0, percent));
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
