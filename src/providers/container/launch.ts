import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import { GalleyError } from "../../core/errors.ts";
import { createHostCgroups, inCgroups } from "./cgroups.ts";
import { machineEnv } from "./run.ts";
import { findNamespaceInit, processStart, signal } from "./procs.ts";

/** A booted host's processes as the machine sees them. */
export interface Boot {
  /** the machine-side process that made the namespaces (systemd-nspawn, unshare) */
  launcher: number;
  /** the host's PID 1 */
  pid: number;
  pidStart: number;
}

/** What booting one host needs. */
export interface BootSpec {
  name: string;
  /** unique on the machine: gly<id>-<name> */
  machine: string;
  merged: string;
  netns: string;
  repo: string;
  /** the host's console output is appended here */
  consoleLog: string;
}

/**
 * Starts a launcher detached from galley (its own session, console to a log file), so the host
 * outlives the command that booted it, and finds the host's PID 1 below it. The launcher starts
 * in the host's own cgroups (cgroups.ts: without them hosts with systemd kill each other's processes).
 */
export async function launch(command: string[], spec: BootSpec): Promise<Boot> {
  const argv = inCgroups(await createHostCgroups(spec.machine), command);
  const log = await fs.open(spec.consoleLog, "a");
  await log.write(`\n--- galley: booting ${spec.name} at ${new Date().toISOString()}\n`);
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(argv[0]!, argv.slice(1), {
      detached: true,
      stdio: ["ignore", log.fd, log.fd],
      env: machineEnv(),
    });
  } finally {
    await log.close();
  }
  const launcher = child.pid;
  child.on("error", () => {});
  child.unref();
  if (launcher === undefined) throw bootFailed(spec, `cannot run ${command[0]}`);
  const pid = await findNamespaceInit(launcher);
  const pidStart = pid === undefined ? undefined : processStart(pid);
  if (pid === undefined || pidStart === undefined) {
    signal(launcher, "SIGKILL");
    throw bootFailed(spec, `${command[0]} did not start the host's PID 1`);
  }
  return { launcher, pid, pidStart };
}

/** The last lines of a host's console log, without colours: why a host did not come up. */
export async function consoleTail(spec: { consoleLog: string }, lines = 15): Promise<string> {
  const text = await fs.readFile(spec.consoleLog, "utf8").catch(() => "");
  // strip the colours systemd writes to its console
  return text
    .replace(/\x1b\[[0-9;]*m/g, "")
    .trimEnd()
    .split("\n")
    .slice(-lines)
    .join("\n");
}

function bootFailed(spec: BootSpec, detail: string): GalleyError {
  return new GalleyError("PROVIDER_FAILED", `host ${spec.name} did not boot: ${detail}`, {
    hint: `see its console: ${spec.consoleLog}`,
  });
}
