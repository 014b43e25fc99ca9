import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { after, before } from "node:test";
import { GalleyError } from "../../src/core/errors.ts";
import { SshHost } from "../../src/hosts/ssh.ts";
import type { SshTarget } from "../../src/hosts/target.ts";
import { tempDir } from "../../src/resources/testing.ts";

// A real OpenSSH server for tests: its own config, host key, authorized keys and port on
// 127.0.0.1, run as root in the foreground and ended by its pid (with every session it started).

/** A running sshd and what a client needs to reach it. */
export interface Sshd {
  port: number;
  /** the known_hosts line of its host key: `[127.0.0.1]:PORT ssh-ed25519 AAAA…` */
  hostKeyLine: string;
  /** a private key every authorized user may log in with */
  clientKeyFile: string;
  /** a known_hosts file holding hostKeyLine */
  knownHostsFile: string;
  dir: string;
  pid: number;
  /** the pids of the sshd processes serving open connections */
  sessionPids(): number[];
  /** what sshd logged (-e) */
  log(): string;
  /** stops and starts it again on the same port, with a fresh host key when asked */
  restart(options?: { newHostKey?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts sshd on a free port of 127.0.0.1, letting `users` log in with a fresh client key.
 *
 * @example const sshd = await startSshd(["root"]); t.after(() => sshd.stop());
 */
export async function startSshd(users: string[] = ["root"]): Promise<Sshd> {
  ensurePackages();
  const dir = await tempDir("galley-sshd-");
  // sshd reads authorized_keys as the logging-in user: they must reach it
  await fs.chmod(dir, 0o755);
  keygen(path.join(dir, "host_ed25519"), "galley-test-host");
  const clientKeyFile = path.join(dir, "client_ed25519");
  keygen(clientKeyFile, "galley-test-client");
  const publicKey = await fs.readFile(`${clientKeyFile}.pub`, "utf8");
  await fs.mkdir(path.join(dir, "authorized_keys"), { mode: 0o755 });
  for (const user of users)
    await fs.writeFile(path.join(dir, "authorized_keys", user), publicKey, { mode: 0o644 });
  await fs.mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  let child: ChildProcess | undefined;
  let output = "";
  let port = 0;
  const launch = async (fixedPort?: number) => {
    for (let attempt = 0; attempt < 20; attempt++) {
      port = fixedPort ?? (await freePort());
      await fs.writeFile(path.join(dir, "sshd_config"), config(dir, port));
      const started = await spawnSshd(dir, port);
      output += started.output;
      if (started.child) {
        child = started.child;
        child.stderr?.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        return;
      }
      // the port was taken between picking it and binding it: try another (or wait for ours)
      if (!/Address already in use/.test(started.output)) break;
      if (fixedPort !== undefined) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`sshd did not start:\n${output}`);
  };
  await launch();
  const hostKeyLine = () =>
    `[127.0.0.1]:${port} ${readFileSync(path.join(dir, "host_ed25519.pub"), "utf8").split(" ").slice(0, 2).join(" ")}`;
  const knownHostsFile = path.join(dir, "known_hosts");
  await fs.writeFile(knownHostsFile, `${hostKeyLine()}\n`);
  const stop = async () => {
    const running = child;
    child = undefined;
    if (!running?.pid || running.exitCode !== null) return;
    const sessions = descendants(running.pid);
    const exited = new Promise((resolve) => running.once("exit", resolve));
    running.kill("SIGTERM");
    for (const pid of sessions) signal(pid, "SIGKILL");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
    if (running.exitCode === null && running.signalCode === null) running.kill("SIGKILL");
  };
  const sshd: Sshd = {
    get port() {
      return port;
    },
    get hostKeyLine() {
      return hostKeyLine();
    },
    clientKeyFile,
    knownHostsFile,
    dir,
    get pid() {
      return child?.pid ?? 0;
    },
    sessionPids: () => (child?.pid ? descendants(child.pid) : []),
    log: () => output,
    async restart(options = {}) {
      await stop();
      if (options.newHostKey) {
        await fs.rm(path.join(dir, "host_ed25519"));
        await fs.rm(path.join(dir, "host_ed25519.pub"));
        keygen(path.join(dir, "host_ed25519"), "galley-test-host");
      }
      await launch(port);
    },
    stop,
  };
  return sshd;
}

function config(dir: string, port: number): string {
  const sftp = existsSync("/usr/lib/openssh/sftp-server") ? "/usr/lib/openssh/sftp-server" : "internal-sftp";
  return [
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    `HostKey ${dir}/host_ed25519`,
    `PidFile ${dir}/sshd.pid`,
    `AuthorizedKeysFile ${dir}/authorized_keys/%u`,
    "UsePAM no",
    "StrictModes no",
    "PermitRootLogin prohibit-password",
    "PasswordAuthentication no",
    "KbdInteractiveAuthentication no",
    "AllowTcpForwarding yes",
    `Subsystem sftp ${sftp}`,
    "",
  ].join("\n");
}

/**
 * Root's `~/.bashrc` on the machine running the tests, which Debian's bash reads for every SSH
 * command. This machine's runs `pyenv init`, whose rehash takes a lock file in ~/.pyenv: a session
 * the tests kill mid-login leaves it behind, and every later root login then waits 60 s for it.
 * The test sshd runs in a mount namespace of its own where that file is an empty one, so its
 * sessions start the same on every machine; nothing else of the filesystem differs.
 */
const ROOT_BASHRC = "/root/.bashrc";

/** Starts sshd and waits until it listens, or returns what it said before it exited. */
async function spawnSshd(dir: string, port: number): Promise<{ child?: ChildProcess; output: string }> {
  const sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", path.join(dir, "sshd_config")];
  let argv = sshd;
  if (existsSync(ROOT_BASHRC) && existsSync("/usr/bin/unshare")) {
    const empty = path.join(dir, "root-bashrc");
    await fs.writeFile(empty, "# the test sshd's sessions start without the machine's root .bashrc\n", {
      mode: 0o644,
    });
    // unshare without --fork execs in place: the pid we get is sshd's
    argv = [
      "/usr/bin/unshare",
      "--mount",
      "--propagation",
      "private",
      "/bin/sh",
      "-c",
      'mount --bind "$0" "$1" && shift && exec "$@"',
      empty,
      ROOT_BASHRC,
      ...sshd,
    ];
  }
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let output = "";
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`Server listening on 127.0.0.1 port ${port}`)) {
        child.stderr!.off("data", onData);
        child.off("exit", onExit);
        resolve({ child, output });
      }
    };
    const onExit = () => resolve({ output });
    child.stderr!.on("data", onData);
    child.once("exit", onExit);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A port nothing listens on (closed right after it was picked). */
export async function closedPort(): Promise<number> {
  return freePort();
}

/** Makes a fresh ed25519 key pair at `file` and `file`.pub. */
export function keygen(file: string, comment: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", file], {
    stdio: "ignore",
  });
}

/** The pids of every process below `pid`, from /proc. */
function descendants(pid: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(parent, [...(parents.get(parent) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const found: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    for (const child of parents.get(stack.pop()!) ?? []) {
      found.push(child);
      stack.push(child);
    }
  }
  return found;
}

/** Sends a signal to a process we started (directly or through our sshd); gone is fine. */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function ensurePackages(): void {
  if (existsSync("/usr/sbin/sshd") && existsSync("/usr/bin/sudo")) return;
  execFileSync("apt-get", ["install", "-y", "-q", "--no-install-recommends", "openssh-server", "sudo"], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
}

/**
 * Makes sure a login user exists (unlocked, so that sshd lets it in with a key) with sudo rights:
 * `nopasswd` (sudo -n works) or `password` (sudo asks for one). Users stay: tests in other
 * processes may be using them.
 */
export async function ensureUser(name: string, sudo: "nopasswd" | "password"): Promise<void> {
  for (let attempt = 0; !userExists(name); attempt++) {
    try {
      // "*": no password, but not locked ("!"), which sshd without PAM would refuse
      execFileSync("useradd", ["-m", "-s", "/bin/sh", "-p", "*", name], { stdio: "ignore" });
    } catch (error) {
      // another test process creating it at the same time holds the lock: wait and look again
      if (attempt >= 30) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  const rule = `${name} ALL=(ALL:ALL) ${sudo === "nopasswd" ? "NOPASSWD: " : ""}ALL\n`;
  const file = `/etc/sudoers.d/galley-test-${name}`;
  if (existsSync(file) && readFileSync(file, "utf8") === rule) return;
  // sudo ignores names with a dot: the temp file is never read half-written
  const temp = `${file}.${process.pid}`;
  await fs.writeFile(temp, rule, { mode: 0o440 });
  await fs.rename(temp, file);
}

function userExists(name: string): boolean {
  return readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .some((line) => line.startsWith(`${name}:`));
}

/** A target on `server` as root with its key and known_hosts, strict, no retries; `overrides` win. */
export function sshTarget(server: Sshd, overrides: Partial<SshTarget> = {}): SshTarget {
  return {
    name: "box",
    address: "127.0.0.1",
    port: server.port,
    user: "root",
    keyFile: server.clientKeyFile,
    become: false,
    becomeUser: "root",
    knownHostsFile: server.knownHostsFile,
    hostKeyChecking: "strict",
    connectTimeoutMs: 5000,
    retries: 0,
    ...overrides,
  };
}

/** The GalleyError a promise rejects with (failing the test when it resolves). */
export async function refusal(promise: Promise<unknown>): Promise<GalleyError> {
  const error = await promise.then(
    () => assert.fail("expected a refusal"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof GalleyError, `not a GalleyError: ${error}`);
  return error;
}

/** A world-readable temp dir (tests that log in as galleyssh read and write there). */
export async function sharedDir(): Promise<string> {
  const dir = await tempDir("galley-ssh-");
  await fs.chmod(dir, 0o755);
  return dir;
}

/**
 * The test file's own sshd on 127.0.0.1 (root, galleyssh with passwordless sudo, galleypw whose
 * sudo asks for a password), started before its tests and stopped after them, and a `connect`
 * that closes the host when the test ends.
 */
export function sshdForTests() {
  const state: { sshd?: Sshd } = {};
  before(async () => {
    await ensureUser("galleyssh", "nopasswd");
    await ensureUser("galleypw", "password");
    state.sshd = await startSshd(["root", "galleyssh", "galleypw"]);
  });
  after(() => state.sshd?.stop());
  const server = () => state.sshd!;
  const target = (overrides: Partial<SshTarget> = {}, on = server()) => sshTarget(on, overrides);
  const connect = async (
    t: { after(fn: () => unknown): void },
    overrides: Partial<SshTarget> = {},
    on = server(),
  ) => {
    const host = await SshHost.connect(target(overrides, on));
    t.after(() => host.close());
    return host;
  };
  return { server, target, connect };
}
