/** How the engine reaches a machine. Local, SSH and agent hosts implement the same primitives. */
export interface Host {
  readonly name: string;
  /** Runs a command. A non-zero exit is a result, not an exception; only a failure to start throws. */
  exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /** Writes atomically: a temp file in the same directory, then rename. */
  writeFile(path: string, data: Uint8Array | string, options?: WriteOptions): Promise<void>;
  /** lstat: a symlink is described, not followed. Undefined when nothing is there. */
  stat(path: string): Promise<Stat | undefined>;
  facts(): Promise<Facts>;
  /** how many resources of a wave the engine may apply at once: a host that batches their writes says so (default 1) */
  readonly waveSize?: number;
}

/** Optional file-system abilities. A host without them gets the same effect through `exec`. */
export interface FsHost extends Host {
  mkdir(
    path: string,
    options: { mode?: number; owner?: string; group?: string; recursive?: boolean },
  ): Promise<void>;
  remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  chown(path: string, owner: string | undefined, group: string | undefined): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /** the names in a directory; empty when it does not exist */
  list(path: string): Promise<string[]>;
}

export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** run as this user (via runuser/su when the host runs as root) */
  user?: string;
  input?: string | Uint8Array;
  timeoutMs?: number;
}

export interface ExecResult {
  argv: readonly string[];
  exitCode: number;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  durationMs: number;
}

export interface WriteOptions {
  mode?: number;
  owner?: string;
  group?: string;
  /** also fsync the directory after the rename, so that the new file survives a power loss (local host; `writeDurable` in core/fsops.ts does it on any host) */
  durable?: boolean;
  /** keep the content this write replaces as `<dir>/<name>.<time>`, the newest `keep` only, in the same step (hosts with `keepsBackups` only) */
  backup?: { dir: string; keep: number };
}

/** Optional ability: writeFile keeps a backup of the replaced content itself (WriteOptions.backup), without a command of its own. */
export interface BackupHost extends Host {
  readonly keepsBackups: true;
}

/** Whether a host keeps backups as part of writeFile. */
export function keepsBackups(host: Host): host is BackupHost {
  return (host as Partial<BackupHost>).keepsBackups === true;
}

export interface Stat {
  type: "file" | "directory" | "symlink" | "other";
  /** permission bits only, e.g. 0o644 */
  mode: number;
  uid: number;
  gid: number;
  /** user name, or the uid as text when no user has it */
  owner: string;
  group: string;
  size: number;
  mtimeMs: number;
  /** where a symlink points */
  target?: string;
}

export interface Facts {
  hostname: string;
  fqdn: string;
  os: {
    /** "linux" */
    kernel: string;
    kernelRelease: string;
    /** os-release ID: "debian", "ubuntu" */
    id: string;
    /** os-release ID_LIKE plus ID: the platform family, e.g. "debian" */
    family: string;
    version: string;
    codename: string;
    prettyName: string;
  };
  arch: string;
  cpus: number;
  memoryMb: number;
  /** "systemd" when PID 1 is systemd, else "sysv" */
  init: "systemd" | "sysv";
  /** IPv4 and IPv6 addresses of non-loopback interfaces */
  addresses: { interface: string; family: "ipv4" | "ipv6"; address: string }[];
  user: { name: string; uid: number; gid: number; home: string };
}

/** A kernel lock held on a host: the kernel drops it when its holder ends, whatever the way. */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Optional ability: an exclusive flock(2) on a file of the host, held by a process that ends with
 * this Galley process (local) or with its connection (SSH), so a crashed holder never leaves it
 * behind. Resolves undefined when `waitMs` passed without it (0: one try).
 */
export interface LockingHost extends Host {
  lock(file: string, options: LockOptions): Promise<HeldLock | undefined>;
}

/** How a lock is taken: how long to wait, and what the same step does around it. */
export interface LockOptions {
  waitMs: number;
  signal?: AbortSignal | undefined;
  /** make the lock file's folder first (`mkdir -p`, then this mode): no step of its own */
  dirMode?: number | undefined;
  /** once the lock is held, write this file (temp + rename): who holds it, for the next run's message */
  holder?: { file: string; content: string } | undefined;
}

/** Whether a host can take kernel locks. */
export function canLock(host: Host): host is LockingHost {
  return typeof (host as Partial<LockingHost>).lock === "function";
}

/** Whether a host has the optional file-system abilities. */
export function hasFs(host: Host): host is FsHost {
  return typeof (host as Partial<FsHost>).mkdir === "function";
}
