import { execFile, spawnSync } from "node:child_process";
import * as path from "node:path";
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

/**
 * Logs the `galley` command in to a test's server with its first admin token, pinning its CA by
 * fingerprint; the context file goes in `cwd`. Returns the environment that makes later commands
 * (cli, cliAsync) talk to that server.
 */
export async function loginTo(
  server: { url: string; adminTokenFile: string; caFingerprint: string },
  cwd: string,
): Promise<Record<string, string>> {
  const env = { GALLEY_CONTEXT: path.join(cwd, "context.json") };
  const args = ["--server", server.url, "--token-file", server.adminTokenFile];
  const login = await cliAsync(["login", ...args, "--ca-fingerprint", server.caFingerprint], cwd, env);
  if (login.code !== 0) throw new Error(`galley login failed (${login.code}): ${login.stderr}`);
  return env;
}
