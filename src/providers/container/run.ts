import { spawn } from "node:child_process";
import { GalleyError } from "../../core/errors.ts";

/** What a machine-side command did. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options of a machine-side command. */
export interface RunOptions {
  input?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** receives each line of stderr (and stdout) as it comes: progress of long commands */
  onLine?: (line: string) => void;
}

// a clean, predictable environment: no NOTIFY_SOCKET or LISTEN_FDS leaking into systemd-nspawn
const baseEnv = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LANG: "C.UTF-8",
  LC_ALL: "C.UTF-8",
};

/** The environment machine-side commands run with (proxy variables kept: apt and mmdebstrap honour them). */
export function machineEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...baseEnv, HOME: process.env.HOME ?? "/root" };
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(https?|ftp|no|all)_proxy$/i.test(key)) env[key] = value;
  }
  return { ...env, ...extra };
}

/** Runs a command on the machine; a non-zero exit is a result. A missing program is exit 127. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const [command, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(command!, args, {
      cwd: options.cwd,
      env: options.env ?? machineEnv(),
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const lines = options.onLine ? lineSplitter(options.onLine) : undefined;
    child.stdout.on("data", (chunk: Buffer) => {
      out.push(chunk);
      lines?.(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err.push(chunk);
      lines?.(chunk);
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") resolve({ code: 127, stdout: "", stderr: `${command}: not found` });
      else reject(error);
    });
    child.on("close", (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(options.input);
  });
}

/** Runs a command that must succeed; otherwise PROVIDER_FAILED naming `what`, with its stderr. */
export async function runOk(
  argv: readonly string[],
  what: string,
  options: RunOptions = {},
): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) {
    throw new GalleyError("PROVIDER_FAILED", `${what} failed: ${argv.join(" ")}: ${lastLines(result)}`, {
      hint: "see the message above; galley hosts down cleans up what was half made",
    });
  }
  return result.stdout;
}

/** The last lines of a failed command's output, for an error message. */
export function lastLines(result: RunResult, count = 8): string {
  const text = (result.stderr.trim() || result.stdout.trim() || `exit status ${result.code}`).split("\n");
  return text.slice(-count).join("\n");
}

function lineSplitter(onLine: (line: string) => void): (chunk: Buffer) => void {
  let rest = "";
  return (chunk) => {
    const parts = (rest + chunk.toString("utf8")).split(/\r?\n/);
    rest = parts.pop() ?? "";
    for (const part of parts) if (part.trim()) onLine(part);
  };
}
