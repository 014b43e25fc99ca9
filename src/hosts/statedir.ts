import * as os from "node:os";
import * as path from "node:path";

// The one definition of where Galley keeps a host's state between runs (the notification ledger,
// the run lock, backups, shipped app archives), for solo (this machine), push (the login on the
// remote host) and the ledger commands alike.

/** Root's state directory on every host. */
export const rootStateDir = "/var/lib/galley";

/** A user of a host as far as its state directory goes. */
export interface StateDirUser {
  uid: number;
  home: string;
}

/**
 * Where Galley keeps state on a host for `user`: /var/lib/galley for root, else
 * `$XDG_STATE_HOME/galley` when given, else `<home>/.local/state/galley`.
 *
 * @example stateDirOf({ uid: 1000, home: "/home/deploy" }) // "/home/deploy/.local/state/galley"
 */
export function stateDirOf(user: StateDirUser, xdgStateHome?: string): string {
  if (user.uid === 0) return rootStateDir;
  const base = xdgStateHome || path.posix.join(user.home, ".local", "state");
  return path.posix.join(base, "galley");
}

/** This machine's state directory for the user running Galley (solo runs, `galley notifications`). */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return stateDirOf({ uid: process.getuid?.() ?? -1, home: os.homedir() }, env.XDG_STATE_HOME);
}
