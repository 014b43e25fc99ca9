import * as os from "node:os";
import type { ClientChannel, SFTPWrapper } from "ssh2";
import { GalleyError } from "../core/errors.ts";
import { interruptGraceMs, signalOf } from "../core/interrupt.ts";
import type {
  ExecOptions,
  ExecResult,
  Facts,
  HeldLock,
  LockingHost,
  Stat,
  WriteOptions,
} from "../core/host.ts";
import { limit } from "../core/limit.ts";
import { flockArgv, lockConflict } from "./flock.ts";
import { ReadBatch } from "./remote-batch.ts";
import { becomeMarker, commandLine, type RemoteIdentity, shellQuote } from "./remote-command.ts";
import { factsScript, parseFacts } from "./remote-facts.ts";
import { writeRemoteFile } from "./remote-write.ts";
import { type ConnectOptions, openConnection, type SshConnection, unreachable } from "./ssh-connect.ts";
import type { SshTarget } from "./target.ts";

/** A command's raw outcome on the remote side. */
export interface RawResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  durationMs: number;
}

/**
 * sshd allows 10 sessions per connection (MaxSessions): 7 commands, the SFTP session, the run
 * lock's channel, and one spare for the command that stops the others on an interrupt.
 */
const maxChannels = 7;

/**
 * Run before a command that can be interrupted: says on stderr the process group it runs in (the
 * sshd session's, from /proc) and its pid (which the command keeps, and which is a group of its
 * own when the command, like `timeout`, makes one), then becomes the command.
 */
const announcePid = [
  'c=$1; g=$$; s=""',
  "read -r s < /proc/$$/stat 2>/dev/null",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  's=${s##*) }; set -- $s; [ -n "$3" ] && g=$3',
  'echo "$g $$" >&2; eval "exec $c"',
].join("; ");

/**
 * Signals an interrupted command (`sh -c SCRIPT sh SIGNAL GROUP PID`): its session's process
 * group, its own group, and every process descended from it (a `timeout` under sudo makes a group
 * of its own), found in /proc.
 */
const killScript = [
  "sig=$1; g=$2; p=$3; pids=$p; list=$p",
  'while [ -n "$list" ]; do next=""',
  'for f in /proc/[0-9]*/stat; do s=""; read -r s < "$f" 2>/dev/null || continue',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  "s=${s##*) }; set -- $s",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'for q in $list; do if [ "$2" = "$q" ]; then c=${f#/proc/}; next="$next ${c%/stat}"; fi; done',
  'done; pids="$pids $next"; list=$next; done',
  'kill -s "$sig" -- "-$g" "-$p" $pids 2>/dev/null; exit 0',
].join("\n");

/**
 * A host reached over SSH (ssh2): one connection for the whole run, commands over exec channels,
 * file transfers over SFTP, and reads batched into a few remote commands.
 */
export class SshHost implements LockingHost {
  readonly name: string;
  /** how many reads the engine may have in flight: reads are batched, so many is good */
  readonly readConcurrency = 4096;
  /** what this connection did so far, for tests and benchmarks */
  readonly stats = { commands: 0 };
  /** resolves when the connection ends: with HOST_UNREACHABLE when it dropped, undefined after close() */
  readonly closed: Promise<GalleyError | undefined>;
  readonly target: SshTarget;
  readonly identity: RemoteIdentity;
  readonly #connection: SshConnection;
  readonly #channels = limit(maxChannels);
  readonly #batch: ReadBatch;
  readonly #pending = new Set<(error: GalleyError) => void>();
  #lost: GalleyError | undefined;
  #closing = false;
  #lastError: string | undefined;
  #sftp: Promise<SFTPWrapper> | undefined;
  #facts: Promise<Facts> | undefined;
  #staging: Promise<string> | undefined;

  /** aborted: running commands get the signal over their channel, then SIGKILL; no new one starts */
  readonly #interrupt: AbortSignal | undefined;

  private constructor(target: SshTarget, connection: SshConnection, interrupt?: AbortSignal) {
    this.name = target.name;
    this.#interrupt = interrupt;
    this.target = target;
    this.#connection = connection;
    const become = target.become && target.becomeUser !== target.user ? target.becomeUser : undefined;
    this.identity = { login: target.user, become };
    this.#batch = new ReadBatch(async (argv) => {
      const raw = await this.runRaw(commandLine(argv, {}, this.identity));
      return { exitCode: raw.exitCode, stdout: raw.stdout, stderr: this.#stripMarker(raw).toString("utf8") };
    }, this.name);
    this.closed = new Promise((resolve) => {
      const ended = () => {
        if (this.#closing || this.#lost) return resolve(this.#lost);
        const why = this.#lastError
          ? `the connection was lost (${this.#lastError})`
          : "the connection was lost";
        this.#lost = unreachable({ label: this.name, address: target.address, port: target.port }, why);
        for (const reject of this.#pending) reject(this.#lost);
        this.#pending.clear();
        resolve(this.#lost);
      };
      for (const client of [connection.client, connection.jump]) {
        client?.on("error", (error: Error) => {
          this.#lastError = error.message;
        });
        client?.on("close", ended);
      }
    });
  }

  /**
   * Connects, checks the host key, authenticates and, with become, checks that sudo lets us in
   * (gathering the facts in that same round trip).
   *
   * @example const host = await SshHost.connect(target); try { … } finally { await host.close(); }
   */
  static async connect(target: SshTarget, options: ConnectOptions = {}): Promise<SshHost> {
    const connection = await openConnection(target, options);
    const host = new SshHost(target, connection, options.signal);
    if (host.identity.become !== undefined) {
      options.onStatus?.("checking sudo");
      try {
        await host.facts();
      } catch (error) {
        await host.close();
        throw error;
      }
    }
    return host;
  }

  /** Set once the connection dropped: every later call fails with it. */
  get lost(): GalleyError | undefined {
    return this.#lost;
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const interrupt = this.#interrupt;
    if (interrupt?.aborted) throw interrupt.reason;
    const line = commandLine(argv, options, this.identity);
    // root sessions cannot take SSH "signal" requests (sshd runs them without privilege separation):
    // an interruptible command says its process group, and an interrupt kills its process group by command
    const raw = await this.runRaw(
      interrupt ? `sh -c ${shellQuote(announcePid)} sh ${shellQuote(line)}` : line,
      options.input,
      options.timeoutMs,
      interrupt ? (stream) => this.#forwardInterrupt(stream, interrupt) : undefined,
    );
    if (interrupt) raw.stderr = raw.stderr.subarray(raw.stderr.indexOf(10) + 1);
    const timedOut =
      options.timeoutMs !== undefined && raw.exitCode === 137 && raw.durationMs >= options.timeoutMs;
    return {
      argv,
      exitCode: raw.exitCode,
      stdout: raw.stdout.toString("utf8"),
      stderr: this.#stripMarker(raw).toString("utf8"),
      timedOut,
      durationMs: raw.durationMs,
    };
  }

  readFile(path: string): Promise<Uint8Array | undefined> {
    return this.#guard(() => (path === "" ? Promise.resolve(undefined) : this.#batch.readFile(path)));
  }

  stat(path: string): Promise<Stat | undefined> {
    return this.#guard(() => (path === "" ? Promise.resolve(undefined) : this.#batch.stat(path)));
  }

  writeFile(path: string, data: Uint8Array | string, options: WriteOptions = {}): Promise<void> {
    return this.#guard(() =>
      writeRemoteFile(this, path, typeof data === "string" ? Buffer.from(data) : data, options),
    );
  }

  facts(): Promise<Facts> {
    this.#facts ??= this.exec(["sh", "-c", factsScript]).then((result) => {
      if (result.exitCode !== 0) {
        throw new GalleyError(
          "EXEC_FAILED",
          `gathering facts on ${this.name} failed (exit ${result.exitCode}): ${result.stderr.trim()}`,
          {
            hint: "the facts script needs a POSIX sh with uname, id and cat on the host",
          },
        );
      }
      return parseFacts(result.stdout);
    });
    this.#facts.catch(() => {
      this.#facts = undefined;
    });
    return this.#facts;
  }

  /**
   * Takes an exclusive flock on a remote file, held by `flock … cat` on its own channel (sshd's
   * spare session, outside the 8 command channels): when the connection drops, sshd closes the
   * command's stdin, `cat` ends and the remote kernel drops the lock.
   */
  lock(
    file: string,
    options: { waitMs: number; signal?: AbortSignal | undefined },
  ): Promise<HeldLock | undefined> {
    return this.#guard(
      () =>
        new Promise<HeldLock | undefined>((resolve, reject) => {
          this.#connection.client.exec(
            commandLine(flockArgv(file, options.waitMs), {}, this.identity),
            (error, stream) => {
              if (error) return reject(this.#failure(error, `lock ${file}`));
              let locked = false;
              let exitCode: number | undefined;
              let stderr = "";
              const onAbort = () => {
                stream.close();
                reject(options.signal?.reason);
              };
              options.signal?.addEventListener("abort", onAbort, { once: true });
              const settle = () => options.signal?.removeEventListener("abort", onAbort);
              const closed = new Promise<void>((done) => stream.on("close", () => done()));
              stream.stderr.on("data", (chunk: Buffer) => {
                stderr += chunk.toString("utf8");
              });
              stream.on("exit", (code: number | null) => {
                exitCode = code ?? undefined;
              });
              stream.on("error", () => {});
              stream.once("data", () => {
                locked = true;
                settle();
                resolve({
                  release: async () => {
                    stream.end();
                    await Promise.race([closed, this.closed]);
                  },
                });
              });
              stream.on("close", () => {
                settle();
                if (locked) return;
                if (exitCode === lockConflict) return resolve(undefined);
                const said = stderr.replaceAll(becomeMarker, "").trim();
                reject(
                  this.#lost ??
                    new GalleyError(
                      "EXEC_FAILED",
                      `cannot lock ${file} on ${this.name}: ${said || `flock exited ${exitCode ?? "without a status"}`}`,
                      { hint: "the host needs flock(1) (util-linux) and a writable state dir" },
                    ),
                );
              });
            },
          );
        }),
    );
  }

  /** Ends the connection (and the jump host's); removes the upload directory of a become host. */
  async close(): Promise<void> {
    if (this.#closing) return;
    if (!this.#lost && this.#staging) {
      const staging = await this.#staging.catch(() => undefined);
      const sftp = await this.#sftp?.catch(() => undefined);
      if (staging && sftp) await new Promise<void>((resolve) => sftp.rmdir(staging, () => resolve()));
    }
    this.#closing = true;
    const { client, jump } = this.#connection;
    client.end();
    jump?.end();
    await Promise.race([this.closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    client.destroy();
    jump?.destroy();
  }

  /** The SFTP session, opened on first use and kept. */
  sftp(): Promise<SFTPWrapper> {
    this.#sftp ??= this.#guard(
      () =>
        new Promise<SFTPWrapper>((resolve, reject) => {
          this.#connection.client.sftp((error, sftp) =>
            error ? reject(this.#failure(error, "open SFTP")) : resolve(sftp),
          );
        }),
    );
    this.#sftp.catch(() => {
      this.#sftp = undefined;
    });
    return this.#sftp;
  }

  /** A private directory of the login user for uploads that sudo then installs (become only). */
  stagingDir(): Promise<string> {
    this.#staging ??= this.sftp().then(
      (sftp) =>
        new Promise<string>((resolve, reject) => {
          const dir = `/tmp/galley-upload-${process.getBuiltinModule("node:crypto").randomBytes(8).toString("hex")}`;
          sftp.mkdir(dir, { mode: 0o700 }, (error) =>
            error ? reject(this.#failure(error, `create ${dir}`)) : resolve(dir),
          );
        }),
    );
    this.#staging.catch(() => {
      this.#staging = undefined;
    });
    return this.#staging;
  }

  /**
   * Runs one command line on an exec channel (at most 7 at once) and collects its output. A timed
   * command whose remote `timeout` never answers is given up 10 s after its time.
   */
  runRaw(
    command: string,
    input?: string | Uint8Array,
    timeoutMs?: number,
    onStart?: (stream: ClientChannel) => void,
  ): Promise<RawResult> {
    return this.#guard(() => this.#channels(() => this.#run(command, input, timeoutMs, onStart)));
  }

  #run(
    command: string,
    input?: string | Uint8Array,
    timeoutMs?: number,
    onStart?: (stream: ClientChannel) => void,
  ): Promise<RawResult> {
    return new Promise<RawResult>((resolve, reject) => {
      const started = performance.now();
      this.stats.commands += 1;
      this.#pending.add(reject);
      const done = (result: RawResult | GalleyError) => {
        this.#pending.delete(reject);
        if (result instanceof GalleyError) reject(result);
        else resolve(result);
      };
      this.#connection.client.exec(command, (error, stream) => {
        if (error) return done(this.#failure(error, "start a command"));
        onStart?.(stream);
        collect(stream, input, timeoutMs, started, (result) => done(result ?? this.#lost ?? this.#dropped()));
      });
    });
  }

  /**
   * On abort, sends the signal Galley received to the command's process group (by a `kill` run as
   * the same user, sudo included), then SIGKILL after the grace period, then closes the channel.
   */
  #forwardInterrupt(stream: ClientChannel, interrupt: AbortSignal): void {
    let ids: string[] = [];
    let said = "";
    const onStderr = (chunk: Buffer) => {
      said += chunk.toString("latin1");
      const end = said.indexOf("\n");
      if (end < 0) return;
      ids = said.slice(0, end).split(" ");
      stream.stderr.off("data", onStderr);
    };
    stream.stderr.on("data", onStderr);
    let killer: NodeJS.Timeout | undefined;
    const kill = (name: string) => {
      if (ids.length !== 2 || !ids.every((id) => /^\d+$/.test(id))) return;
      // on the spare session: the 7 command channels may all be taken by commands to stop
      const line = commandLine(["sh", "-c", killScript, "sh", name, ...ids], {}, this.identity);
      this.#guard(() => this.#run(line)).catch(() => {});
    };
    const onAbort = () => {
      kill(signalOf(interrupt.reason).replace(/^SIG/, ""));
      killer = setTimeout(() => {
        kill("KILL");
        stream.close();
      }, interruptGraceMs);
    };
    if (interrupt.aborted) onAbort();
    else interrupt.addEventListener("abort", onAbort, { once: true });
    stream.on("close", () => {
      clearTimeout(killer);
      interrupt.removeEventListener("abort", onAbort);
    });
  }

  /** Removes the become marker from stderr; no marker means sudo refused to run the command. */
  #stripMarker(raw: RawResult): Buffer {
    if (this.identity.become === undefined) return raw.stderr;
    if (raw.stderr[0] === becomeMarker.charCodeAt(0)) return raw.stderr.subarray(1);
    const said = raw.stderr.toString("utf8").trim().split("\n").slice(0, 3).join("; ");
    throw new GalleyError(
      "BECOME_FAILED",
      `sudo refused to run commands as ${this.identity.become} for ${this.target.user} on ${this.name}: ${said || `exit ${raw.exitCode}`}`,
      {
        hint: `Galley runs sudo -n (it never types a password): give ${this.target.user} passwordless sudo, e.g. '${this.target.user} ALL=(ALL) NOPASSWD: ALL' in /etc/sudoers.d/, or log in as root and drop become`,
      },
    );
  }

  #guard<T>(action: () => Promise<T>): Promise<T> {
    if (this.#lost) return Promise.reject(this.#lost);
    if (this.#closing)
      return Promise.reject(new GalleyError("EXEC_FAILED", `the connection to ${this.name} is closed`));
    // an SFTP request or a channel cut off by a lost connection fails with why it was lost
    return action().catch((error: unknown) => {
      throw this.#lost ?? error;
    });
  }

  #failure(error: Error, what: string): GalleyError {
    if (this.#lost) return this.#lost;
    return new GalleyError("EXEC_FAILED", `cannot ${what} on ${this.name}: ${error.message}`, {
      hint: "the SSH server refused a session: check MaxSessions in its sshd_config",
    });
  }

  #dropped(): GalleyError {
    return unreachable(
      { label: this.name, address: this.target.address, port: this.target.port },
      "the connection was lost",
    );
  }
}

/** Feeds stdin, gathers stdout and stderr, and reports the exit status (128+n for a signal, as locally). */
function collect(
  stream: ClientChannel,
  input: string | Uint8Array | undefined,
  timeoutMs: number | undefined,
  started: number,
  finish: (result: RawResult | undefined) => void,
): void {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  let exitCode: number | undefined;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          exitCode ??= 137;
          stream.close();
        }, timeoutMs + 10_000);
  stream.on("data", (chunk: Buffer) => stdout.push(chunk));
  stream.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  stream.on("exit", (code: number | null, signal?: string) => {
    exitCode = code ?? 128 + (signal ? (os.constants.signals[signal as NodeJS.Signals] ?? 0) : 0);
  });
  stream.on("close", () => {
    clearTimeout(timer);
    if (exitCode === undefined) return finish(undefined);
    finish({
      exitCode,
      stdout: Buffer.concat(stdout),
      stderr: Buffer.concat(stderr),
      durationMs: performance.now() - started,
    });
  });
  stream.on("error", () => {});
  stream.end(input === undefined ? undefined : typeof input === "string" ? Buffer.from(input) : input);
}
