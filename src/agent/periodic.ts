import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { ConvergeJob } from "../fleet/agent-protocol.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

// The agent's drift runs: the last job the server marked periodic, repeated every run interval
// (plus a random splay, drawn for every run) in the server's run mode, online or not. The job and
// the server's settings are kept in `periodic.json`, so a restarted agent goes on offline.

/** How drift runs go, as the server's welcome last said. */
export interface DriftSettings {
  runIntervalMs: number;
  splayMs: number;
  runMode: "enforce" | "report";
}

/** The defaults before any welcome: every 30 min, splay 5 min, enforce. */
export const defaultDriftSettings: DriftSettings = {
  runIntervalMs: 30 * 60_000,
  splayMs: 5 * 60_000,
  runMode: "enforce",
};

/** periodic.json. */
export interface PeriodicState {
  job?: ConvergeJob | undefined;
  settings: DriftSettings;
}

/** Reads periodic.json (defaults when it is missing or torn). */
export async function readPeriodic(stateDir: string): Promise<PeriodicState> {
  try {
    const parsed = JSON.parse(await fs.readFile(file(stateDir), "utf8")) as Partial<PeriodicState>;
    return { job: parsed.job, settings: { ...defaultDriftSettings, ...parsed.settings } };
  } catch {
    return { settings: { ...defaultDriftSettings } };
  }
}

/** Writes periodic.json atomically (0600: the job's attributes may hold secrets). */
export async function writePeriodic(stateDir: string, state: PeriodicState): Promise<void> {
  await fs.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeFileAtomic(file(stateDir), `${JSON.stringify(state)}\n`, { mode: 0o600 });
}

/**
 * The wait before the next drift run: the interval plus a splay drawn in [0, splayMs).
 *
 * @example nextDriftDelay({ runIntervalMs: 1_800_000, splayMs: 300_000, runMode: "enforce" }) // 1_800_000 … 2_099_999
 */
export function nextDriftDelay(settings: DriftSettings, random = Math.random): number {
  return settings.runIntervalMs + Math.floor(random() * settings.splayMs);
}

function file(stateDir: string): string {
  return path.join(stateDir, "periodic.json");
}
