/**
 * How to reach one host over SSH: the resolved connection settings of an inventory host. Every
 * path is absolute; the inventory resolves relative paths against its own file.
 */
export interface SshTarget {
  /** the inventory name, used in messages and reports */
  name: string;
  /** address or DNS name to connect to */
  address: string;
  port: number;
  user: string;
  /** private key file; without one, the SSH agent at $SSH_AUTH_SOCK is asked */
  keyFile?: string;
  /** run everything through `sudo -n` as `becomeUser` (a non-root login with sudo) */
  become: boolean;
  becomeUser: string;
  /** known_hosts file checked (and, with accept-new, appended to) */
  knownHostsFile: string;
  /** strict: an unknown key is refused; accept-new: an unknown key is recorded (trust on first use). A changed key is always refused. */
  hostKeyChecking: "strict" | "accept-new";
  /** connect through this host first (ProxyJump) */
  jump?: Omit<SshTarget, "name" | "become" | "becomeUser" | "jump" | "connectTimeoutMs" | "retries">;
  connectTimeoutMs: number;
  /** further attempts after a failed connect (not after an authentication or host key failure) */
  retries: number;
  /** where Galley keeps its state on the host (ledger, run lock, backups); default by the login's user */
  stateDir?: string;
}

/** Defaults applied by every inventory format. */
export const targetDefaults = {
  port: 22,
  becomeUser: "root",
  hostKeyChecking: "strict",
  connectTimeoutMs: 10_000,
  retries: 2,
} as const;
