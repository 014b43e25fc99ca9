import { execFile, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const galley = fileURLToPath(new URL("../../bin/galley.js", import.meta.url));

/** Runs the real `galley` command (Node 24, no colours) in `cwd`; never throws on a non-zero exit. */
export function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [galley, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** `cli`, without blocking this process's event loop (a load generator or server in it keeps running). */
export function cliAsync(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [galley, ...args],
      { cwd, encoding: "utf8", maxBuffer: 1 << 26, env: { ...process.env, NO_COLOR: "1", ...env } },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
