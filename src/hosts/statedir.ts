import * as os from "node:os";
import * as path from "node:path";

/** Where a host keeps Galley's state between runs: /var/lib/galley as root, else $XDG_STATE_HOME/galley. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return "/var/lib/galley";
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), ".local", "state");
  return path.join(base, "galley");
}
