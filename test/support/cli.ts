import { spawnSync } from "node:child_process";
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
