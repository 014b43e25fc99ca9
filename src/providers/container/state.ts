import * as fs from "node:fs/promises";
import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { writeFileAtomic } from "../../hosts/atomic-write.ts";

/** How a host boots: systemd through systemd-nspawn, or Galley's small sysv PID 1. */
export type Init = "systemd" | "sysv";

/** A host's life: running (sshd answered), stopped (shut down cleanly), killed, crashed (died by itself), failed (never came up). */
export type HostStatus = "creating" | "running" | "stopped" | "killed" | "crashed" | "failed";

const hostSchema = v.object({
  name: v.string(),
  index: v.number(),
  address: v.string(),
  init: v.picklist(["systemd", "sysv"]),
  image: v.string(),
  netns: v.string(),
  veth: v.string(),
  /** the overlay's read-only layers, top first */
  layers: v.array(v.string()),
  /** the local apt repository bind-mounted at /srv/galley-apt */
  repo: v.string(),
  status: v.picklist(["creating", "running", "stopped", "killed", "crashed", "failed"]),
  /** the link is cut (machine-side veth down) while the host runs */
  cut: v.optional(v.boolean(), false),
  /** the host's PID 1 as the machine sees it, and its start time (guards against pid reuse) */
  pid: v.optional(v.number()),
  pidStart: v.optional(v.number()),
  /** the machine-side process that launched PID 1 (systemd-nspawn or unshare) */
  launcher: v.optional(v.number()),
  createdAt: v.string(),
});

const stateSchema = v.object({
  version: v.literal(1),
  id: v.string(),
  bridge: v.string(),
  subnet: v.string(),
  gateway: v.string(),
  hosts: v.record(v.string(), hostSchema),
});

/** One host of a fleet, as state.json records it. */
export type HostRecord = v.InferOutput<typeof hostSchema>;

/** A fleet: the hosts made from one state folder, their bridge and subnet. */
export type FleetState = v.InferOutput<typeof stateSchema>;

/** state.json parsed and checked; undefined when there is none. Corrupted: PROVIDER_FAILED. */
export async function readState(file: string): Promise<FleetState | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw corrupted(file, (error as Error).message);
  }
  const result = v.safeParse(stateSchema, data);
  if (!result.success) {
    const issue = result.issues[0];
    throw corrupted(file, `${v.getDotPath(issue) ?? "(top)"}: ${issue.message}`);
  }
  return result.output;
}

function corrupted(file: string, detail: string): GalleyError {
  return new GalleyError("PROVIDER_FAILED", `${file} is not a valid fleet state: ${detail}`, {
    hint: "galley hosts down removes this fleet's hosts and network even without a readable state",
  });
}

/** Writes a file atomically: a temp file beside it, fsync, rename (hosts/atomic-write.ts). */
export function writeAtomic(file: string, data: string, mode = 0o644): Promise<void> {
  return writeFileAtomic(file, data, { mode });
}

/** Writes state.json atomically. */
export function writeState(file: string, state: FleetState): Promise<void> {
  return writeAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}
