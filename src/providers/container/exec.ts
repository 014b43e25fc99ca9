import { spawn } from "node:child_process";
import { GalleyError } from "../../core/errors.ts";
import type { ExecResult } from "../../core/host.ts";
import { isAlive } from "./procs.ts";
import { machineEnv, run } from "./run.ts";
import type { HostRecord } from "./state.ts";

const hostPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The command line that runs `argv` inside a host without SSH: nsenter into its PID 1's mount,
 * UTS, IPC, network and PID namespaces and root, with a clean environment.
 *
 * @example nsenterArgv(4242, ["hostname"]) // ["nsenter", "--target", "4242", …, "hostname"]
 */
export function nsenterArgv(
  pid: number,
  argv: readonly string[],
  env: Record<string, string> = {},
): string[] {
  const vars = { PATH: hostPath, HOME: "/root", LANG: "C.UTF-8", TERM: process.env.TERM ?? "dumb", ...env };
  return [
    "nsenter",
    "--target",
    String(pid),
    "--mount",
    "--uts",
    "--ipc",
    "--net",
    "--pid",
    "--root",
    "--wd",
    "--",
    "/usr/bin/env",
    "-i",
    ...Object.entries(vars).map(([key, value]) => `${key}=${value}`),
    ...argv,
  ];
}

/** The running host's PID 1, or PROVIDER_FAILED saying it is not running. */
export function runningPid(host: HostRecord): number {
  if (host.status !== "running" || host.pid === undefined || !isAlive(host.pid, host.pidStart)) {
    throw new GalleyError("PROVIDER_FAILED", `host ${host.name} is not running (${host.status})`, {
      hint: `start it first: galley hosts start ${host.name}`,
    });
  }
  return host.pid;
}

/** Runs a command inside a host and collects its output (for tests and tools). */
export async function execInHost(
  host: HostRecord,
  argv: readonly string[],
  input?: string,
): Promise<ExecResult> {
  const started = performance.now();
  const result = await run(nsenterArgv(runningPid(host), argv), input === undefined ? {} : { input });
  return {
    argv,
    exitCode: result.code,
    stdout: result.stdout,
    stderr: result.stderr,
    timedOut: false,
    durationMs: performance.now() - started,
  };
}

/** Runs a command inside a host on this terminal (stdin, stdout, stderr passed through); its exit code. */
export function execAttached(host: HostRecord, argv: readonly string[]): Promise<number> {
  const [command, ...args] = nsenterArgv(runningPid(host), argv);
  return new Promise((resolve, reject) => {
    const child = spawn(command!, args, { stdio: "inherit", env: machineEnv() });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve(code ?? (signal ? 128 + 9 : 1)));
  });
}
