import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import { closeSync, lstatSync, openSync, readFileSync, readlinkSync, readSync, statSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { interruptGraceMs, signalOf } from "../core/interrupt.ts";
import type {
  ExecOptions,
  ExecResult,
  Facts,
  FsHost,
  HeldLock,
  LockOptions,
  LockingHost,
  Stat,
  WriteOptions,
} from "../core/host.ts";
import { type Accounts, parseAccounts } from "./accounts.ts";
import { parseOsRelease } from "./facts.ts";
import { flockLocal } from "./flock.ts";
import { tempPath } from "../core/temp-files.ts";

/** The machine Galley runs on: solo mode (`galley apply`). */
export class LocalHost implements FsHost, LockingHost {
  readonly name: string;
  #accounts: { stamp: string; value: Accounts } | undefined;
  #accountsChecked = false;
  /** sizes of regular files stat'ed in this turn of the event loop, for the readFile that follows */
  #statSizes = new Map<string, number>();
  #facts: Facts | undefined;
  readonly #interrupt: AbortSignal | undefined;
  readonly #graceMs: number;

  /**
   * `signal` interrupts the run: each running command's process group gets the signal Galley
   * received (SIGINT or SIGTERM), then SIGKILL after `graceMs`; later commands do not start.
   */
  constructor(name = os.hostname(), options: { signal?: AbortSignal | undefined; graceMs?: number } = {}) {
    this.name = name;
    this.#interrupt = options.signal;
    this.#graceMs = options.graceMs ?? interruptGraceMs;
  }

  exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const [command, ...args] = wrapUser(argv, options.user);
    const started = performance.now();
    const interrupt = this.#interrupt;
    if (interrupt?.aborted) return Promise.reject(interrupt.reason);
    return new Promise((resolve, reject) => {
      // its own process group, so that a timeout ends the command's children too
      const child = spawn(command!, args, {
        cwd: options.cwd,
        env: options.env ? { ...process.env, ...options.env } : process.env,
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
      });
      let timedOut = false;
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              try {
                process.kill(-child.pid!, "SIGKILL");
              } catch {
                child.kill("SIGKILL");
              }
            }, options.timeoutMs);
      let killer: NodeJS.Timeout | undefined;
      const onInterrupt = () => {
        signalGroup(child.pid, signalOf(interrupt?.reason));
        killer = setTimeout(() => signalGroup(child.pid, "SIGKILL"), this.#graceMs);
      };
      interrupt?.addEventListener("abort", onInterrupt, { once: true });
      const settle = () => {
        clearTimeout(timer);
        clearTimeout(killer);
        interrupt?.removeEventListener("abort", onInterrupt);
      };
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
      child.on("error", (error: NodeJS.ErrnoException) => {
        settle();
        if (error.code === "ENOENT") {
          resolve({
            argv,
            exitCode: 127,
            stdout: "",
            stderr: `${command}: command not found`,
            timedOut: false,
            durationMs: performance.now() - started,
          });
        } else reject(error);
      });
      child.on("close", (code, signal) => {
        settle();
        resolve({
          argv,
          exitCode: code ?? 128 + (signal ? os.constants.signals[signal] : 0),
          stdout: Buffer.concat(stdout).toString("utf8"),
          stderr: Buffer.concat(stderr).toString("utf8"),
          timedOut,
          durationMs: performance.now() - started,
        });
      });
      child.stdin.on("error", () => {});
      child.stdin.end(options.input);
    });
  }

  // reads are synchronous: on a local disk a thread-pool round trip costs more than the read itself
  async readFile(file: string): Promise<Uint8Array | undefined> {
    try {
      return this.#readKnownSize(file) ?? readFileSync(file);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  #rememberSize(file: string, size: number): void {
    if (this.#statSizes.size === 0) setImmediate(() => this.#statSizes.clear());
    this.#statSizes.set(file, size);
  }

  /**
   * A file this host has just stat'ed (a resource's read does stat, then readFile): one read of
   * the size it had, without readFileSync's fstat. A file that grew meanwhile is read again whole.
   */
  #readKnownSize(file: string): Buffer | undefined {
    const size = this.#statSizes.get(file);
    if (size === undefined) return undefined;
    this.#statSizes.delete(file);
    const fd = openSync(file, "r");
    try {
      const buffer = Buffer.allocUnsafe(size + 1);
      const read = readSync(fd, buffer, 0, buffer.length, 0);
      return read <= size ? buffer.subarray(0, read) : undefined;
    } finally {
      closeSync(fd);
    }
  }

  async writeFile(file: string, data: Uint8Array | string, options: WriteOptions = {}): Promise<void> {
    const temp = tempPath(file);
    const ids = this.#ids(options.owner, options.group);
    const handle = await fs.open(temp, "wx", options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      await handle.sync();
      // chown clears setuid and setgid: own first, then set the mode
      if (ids.uid !== -1 || ids.gid !== -1) await handle.chown(ids.uid, ids.gid);
      if (options.mode !== undefined) await handle.chmod(options.mode);
      await handle.close();
      await fs.rename(temp, file);
    } catch (error) {
      await handle.close().catch(() => {});
      await fs.rm(temp, { force: true });
      throw error;
    }
    if (options.durable) {
      // the rename lives in the directory: without this a power loss may bring the old file back
      const dir = await fs.open(path.dirname(file), "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    }
  }

  async stat(file: string): Promise<Stat | undefined> {
    let st: import("node:fs").Stats;
    try {
      st = lstatSync(file);
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
    const accounts = this.#loadAccounts();
    const type = st.isSymbolicLink()
      ? "symlink"
      : st.isDirectory()
        ? "directory"
        : st.isFile()
          ? "file"
          : "other";
    if (type === "file") this.#rememberSize(file, st.size);
    const result: Stat = {
      type,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      owner: accounts.userById.get(st.uid) ?? String(st.uid),
      group: accounts.groupById.get(st.gid) ?? String(st.gid),
      size: st.size,
      mtimeMs: st.mtimeMs,
    };
    if (type === "symlink") result.target = readlinkSync(file);
    return result;
  }

  async facts(): Promise<Facts> {
    this.#facts ??= localFacts();
    return this.#facts;
  }

  async mkdir(dir: string, options: { mode?: number; owner?: string; group?: string; recursive?: boolean }) {
    const ids = this.#ids(options.owner, options.group);
    await fs.mkdir(dir, { recursive: options.recursive ?? false, mode: options.mode ?? 0o755 });
    if (ids.uid !== -1 || ids.gid !== -1) await fs.chown(dir, ids.uid, ids.gid);
    if (options.mode !== undefined) await fs.chmod(dir, options.mode);
  }

  async remove(target: string, options: { recursive?: boolean } = {}) {
    await fs.rm(target, { recursive: options.recursive ?? false, force: true });
  }

  async symlink(target: string, link: string) {
    // replace atomically: create beside, then rename over whatever is there
    const temp = tempPath(link);
    await fs.symlink(target, temp);
    await fs.rename(temp, link);
  }

  async chmod(target: string, mode: number) {
    await fs.chmod(target, mode);
  }

  async chown(target: string, owner: string | undefined, group: string | undefined) {
    const ids = this.#ids(owner, group);
    await fs.lchown(target, ids.uid, ids.gid);
  }

  async rename(from: string, to: string) {
    await fs.rename(from, to);
  }

  async list(dir: string): Promise<string[]> {
    try {
      return await fs.readdir(dir);
    } catch (error) {
      if (isMissing(error)) return [];
      throw error;
    }
  }

  lock(file: string, options: LockOptions): Promise<HeldLock | undefined> {
    return flockLocal(file, options);
  }

  /**
   * Users and groups, re-read whenever /etc/passwd or /etc/group changed. Checked once per turn of
   * the event loop: 1700 prefetched reads in one turn see one snapshot, and anything that changed
   * the files (a command Galley ran, another process) is seen after the wait it took.
   */
  #loadAccounts(): Accounts {
    if (this.#accounts && this.#accountsChecked) return this.#accounts.value;
    const stamp = `${mtime("/etc/passwd")}:${mtime("/etc/group")}`;
    if (this.#accounts?.stamp !== stamp) {
      this.#accounts = {
        stamp,
        value: parseAccounts(readText("/etc/passwd"), readText("/etc/group")),
      };
    }
    this.#accountsChecked = true;
    setImmediate(() => {
      this.#accountsChecked = false;
    });
    return this.#accounts.value;
  }

  #ids(owner: string | undefined, group: string | undefined): { uid: number; gid: number } {
    const accounts = this.#loadAccounts();
    const uid = owner === undefined ? -1 : resolveId(owner, accounts.users.get(owner)?.uid, "user");
    const gid = group === undefined ? -1 : resolveId(group, accounts.groups.get(group)?.gid, "group");
    return { uid, gid };
  }
}

function resolveId(name: string, id: number | undefined, kind: "user" | "group"): number {
  if (id !== undefined) return id;
  if (/^\d+$/.test(name)) return Number(name);
  throw new GalleyError("APPLY_FAILED", `${kind} '${name}' does not exist on this host`, {
    hint: `declare it with r.${kind}("${name}") before using it as an owner, or fix the name`,
  });
}

// the command's whole process group: a shell's children too
function signalGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

function wrapUser(argv: readonly string[], user: string | undefined): string[] {
  if (user === undefined || user === os.userInfo().username) return [...argv];
  if (process.getuid?.() === 0) return ["runuser", "-u", user, "--", ...argv];
  return ["sudo", "-n", "-u", user, "--", ...argv];
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function localFacts(): Facts {
  const release = parseOsRelease(readText("/etc/os-release"));
  const user = os.userInfo();
  let init: Facts["init"] = "sysv";
  try {
    if (readFileSync("/proc/1/comm", "utf8").trim() === "systemd") init = "systemd";
  } catch {
    // no /proc/1 visible: not systemd as far as we can tell
  }
  const addresses: Facts["addresses"] = [];
  for (const [name, entries] of Object.entries(os.networkInterfaces())) {
    for (const entry of entries ?? []) {
      if (entry.internal) continue;
      addresses.push({
        interface: name,
        family: entry.family === "IPv4" ? "ipv4" : "ipv6",
        address: entry.address,
      });
    }
  }
  const hostname = os.hostname();
  return {
    hostname: hostname.split(".")[0] ?? hostname,
    fqdn: hostname,
    os: { kernel: os.type().toLowerCase(), kernelRelease: os.release(), ...release },
    arch: os.arch() === "x64" ? "x86_64" : os.arch(),
    cpus: os.availableParallelism(),
    memoryMb: Math.round(os.totalmem() / 1024 / 1024),
    init,
    addresses,
    user: { name: user.username, uid: user.uid, gid: user.gid, home: user.homedir },
  };
}
