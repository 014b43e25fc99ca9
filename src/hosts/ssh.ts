import * as os from "node:os";
import type { ClientChannel } from "ssh2";
import { GalleyError } from "../core/errors.ts";
import { interruptGraceMs, signalOf } from "../core/interrupt.ts";
import type {
  ExecOptions,
  ExecResult,
  Facts,
  HeldLock,
  LockOptions,
  LockingHost,
  Stat,
  WriteOptions,
} from "../core/host.ts";
import { limit } from "../core/limit.ts";
import { flockArgv, lockConflict } from "./flock.ts";
import { ReadBatch } from "./remote-batch.ts";
import {
  becomeMarker,
  commandLine,
  effectiveUser,
  type RemoteIdentity,
  shellQuote,
} from "./remote-command.ts";
import { RemoteSession, sessionScript } from "./remote-session.ts";
import { factsScript, parseFacts } from "./remote-facts.ts";
import { WriteBatch } from "./remote-write.ts";
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
 * sshd allows 10 sessions per connection (MaxSessions): up to 7 remote sessions (each runs its
 * commands one after the other), the run lock's channel, and spares for the command that stops
 * the others on an interrupt.
 */
const maxChannels = 7;

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
 * A host reached over SSH (ssh2): one connection for the whole run; commands run in long-lived
 * remote sessions (a shell per channel, one round trip per command, more sessions opened only
 * while all are busy); reads and writes asked in one turn of the event loop are batched into one
 * command each.
 */
export class SshHost implements LockingHost {
  readonly name: string;
  /** how many reads the engine may have in flight: reads are batched, so many is good */
  readonly readConcurrency = 4096;
  /** what this connection did so far, for tests and benchmarks: commands run, and channels opened (sessions, locks, kills) */
  readonly stats = { commands: 0, channels: 0 };
  /** a wave's writes issued in one turn travel in one command: apply them together */
  readonly waveSize = 4096;
  /** writeFile keeps backups of replaced content in the write's own command */
  readonly keepsBackups = true;
  /** resolves when the connection ends: with HOST_UNREACHABLE when it dropped, undefined after close() */
  readonly closed: Promise<GalleyError | undefined>;
  readonly target: SshTarget;
  readonly identity: RemoteIdentity;
  readonly #connection: SshConnection;
  readonly #channels = limit(maxChannels);
  readonly #batch: ReadBatch;
  readonly #writes: WriteBatch;
  /** idle sessions; a busy one is out of the list until its command ends */
  readonly #sessions: RemoteSession[] = [];
  readonly #live = new Set<RemoteSession>();
  /** who commands in a session run as: the session itself runs as the become user */
  readonly #inSession: RemoteIdentity;
  readonly #pending = new Set<(error: GalleyError) => void>();
  #lost: GalleyError | undefined;
  #closing = false;
  #lastError: string | undefined;
  #facts: Promise<Facts> | undefined;

  /** aborted: running commands get the signal over their channel, then SIGKILL; no new one starts */
  readonly #interrupt: AbortSignal | undefined;

  private constructor(target: SshTarget, connection: SshConnection, interrupt?: AbortSignal) {
    this.name = target.name;
    this.#interrupt = interrupt;
    this.target = target;
    this.#connection = connection;
    const become = target.become && target.becomeUser !== target.user ? target.becomeUser : undefined;
    this.identity = { login: target.user, become };
    this.#inSession = { login: effectiveUser(this.identity) };
    this.#batch = new ReadBatch(async (argv) => {
      const raw = await this.runRaw(commandLine(argv, {}, this.#inSession));
      return { exitCode: raw.exitCode, stdout: raw.stdout, stderr: raw.stderr.toString("utf8") };
    }, this.name);
    this.#writes = new WriteBatch(async (argv, input) => {
      const raw = await this.runRaw(commandLine(argv, {}, this.#inSession), input);
      return { exitCode: raw.exitCode, stdout: raw.stdout, stderr: raw.stderr.toString("utf8") };
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
   * (by starting the first session, which runs under sudo, and gathering the facts in it).
   *
   * @example const host = await SshHost.connect(target); try { … } finally { await host.close(); }
   */
  static async connect(target: SshTarget, options: ConnectOptions = {}): Promise<SshHost> {
    const connection = await openConnection(target, options);
    const host = new SshHost(target, connection, options.signal);
    // the first session gathers the facts as it starts, and a second one opens beside it: the
    // run's first reads (a stat and a read in one turn) then find two sessions ready
    const facts = host.facts();
    host.#spare();
    if (host.identity.become !== undefined) {
      options.onStatus?.("checking sudo");
      try {
        await facts;
      } catch (error) {
        await host.close();
        throw error;
      }
    } else facts.catch(() => {});
    return host;
  }

  /** Set once the connection dropped: every later call fails with it. */
  get lost(): GalleyError | undefined {
    return this.#lost;
  }

  async exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const raw = await this.runRaw(
      commandLine(argv, options, this.#inSession),
      options.input,
      options.timeoutMs,
    );
    const timedOut =
      options.timeoutMs !== undefined && raw.exitCode === 137 && raw.durationMs >= options.timeoutMs;
    return {
      argv,
      exitCode: raw.exitCode,
      stdout: raw.stdout.toString("utf8"),
      stderr: raw.stderr.toString("utf8"),
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
      this.#writes.write(path, typeof data === "string" ? Buffer.from(data) : data, options),
    );
  }

  /** The host's facts, gathered once by the first session as it starts (no round trip of their own). */
  facts(): Promise<Facts> {
    this.#facts ??= this.#guard(() =>
      this.#channels(async () => {
        const session = await this.#openSession(factsScript);
        if (session.alive) this.#sessions.push(session);
        const { stdout, exitCode } = session.startup;
        if (exitCode !== 0) {
          throw new GalleyError(
            "EXEC_FAILED",
            `gathering facts on ${this.name} failed (exit ${exitCode}): ${session.startupStderr.trim()}`,
            { hint: "the facts script needs a POSIX sh with uname, id and cat on the host" },
          );
        }
        return parseFacts(stdout.toString("utf8"));
      }),
    );
    this.#facts.catch(() => {
      this.#facts = undefined;
    });
    return this.#facts;
  }

  /**
   * Takes an exclusive flock on a remote file, held by `flock … cat` on its own channel (sshd's
   * spare session, outside the 7 session channels): when the connection drops, sshd closes the
   * command's stdin, `cat` ends and the remote kernel drops the lock.
   */
  lock(file: string, options: LockOptions): Promise<HeldLock | undefined> {
    return this.#guard(
      () =>
        new Promise<HeldLock | undefined>((resolve, reject) => {
          this.stats.channels += 1;
          this.#connection.client.exec(
            commandLine(flockArgv(file, options), {}, this.identity),
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

  /** Ends the sessions and the connection (and the jump host's). */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    for (const session of this.#live) session.close();
    const { client, jump } = this.#connection;
    client.end();
    jump?.end();
    await Promise.race([this.closed, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    client.destroy();
    jump?.destroy();
  }

  /**
   * Runs one command line in a session (at most 7 at once, one per session) and collects its
   * output. A timed command whose remote `timeout` never answers is killed 10 s after its time,
   * and its session given up 2 s later. On an interrupt, the command's process group gets the
   * signal Galley received, then SIGKILL after the grace period.
   */
  runRaw(command: string, input?: string | Uint8Array, timeoutMs?: number): Promise<RawResult> {
    const bytes = typeof input === "string" ? Buffer.from(input) : input;
    return this.#guard(() => this.#channels(() => this.#runInSession(command, bytes, timeoutMs)));
  }

  async #runInSession(
    command: string,
    input: Uint8Array | undefined,
    timeoutMs?: number,
  ): Promise<RawResult> {
    const interrupt = this.#interrupt;
    if (interrupt?.aborted) throw interrupt.reason;
    const session = this.#sessions.pop() ?? (await this.#openSession());
    if (interrupt?.aborted) {
      this.#sessions.push(session);
      throw interrupt.reason;
    }
    this.stats.commands += 1;
    return new Promise<RawResult>((resolve, reject) => {
      let pid: string | undefined;
      let gaveUp = false;
      const timers: NodeJS.Timeout[] = [];
      const kill = (signal: string) => {
        if (pid !== undefined && /^\d+$/.test(pid)) this.#kill(signal, pid);
      };
      const giveUp = (after: number) =>
        timers.push(
          setTimeout(() => {
            gaveUp = true;
            session.destroy();
          }, after),
        );
      const onAbort = () => {
        kill(signalOf(interrupt!.reason).replace(/^SIG/, ""));
        timers.push(
          setTimeout(() => {
            kill("KILL");
            giveUp(interruptGraceMs);
          }, interruptGraceMs),
        );
      };
      if (timeoutMs !== undefined) {
        timers.push(
          setTimeout(() => {
            kill("KILL");
            giveUp(2000);
          }, timeoutMs + 10_000),
        );
      }
      const settle = () => {
        for (const timer of timers) clearTimeout(timer);
        interrupt?.removeEventListener("abort", onAbort);
        this.#pending.delete(reject);
      };
      this.#pending.add(reject);
      const started = performance.now();
      session
        .run(command, input, (said) => {
          pid = said;
          if (interrupt?.aborted) onAbort();
          else interrupt?.addEventListener("abort", onAbort, { once: true });
        })
        .then(
          (result) => {
            settle();
            if (session.alive) this.#sessions.push(session);
            resolve(result);
          },
          (error: unknown) => {
            settle();
            // a command given up on is a killed command, as the channel closed under it used to be
            if (gaveUp && !this.#lost)
              resolve({
                exitCode: 137,
                stdout: Buffer.alloc(0),
                stderr: Buffer.alloc(0),
                durationMs: performance.now() - started,
              });
            else reject(this.#lost ?? error);
          },
        );
    });
  }

  /**
   * Opens a session: `sh` reading requests on one exec channel, under `sudo -n` once for the whole
   * session with become, running `first` before it says it is ready. A session whose sudo refuses
   * is BECOME_FAILED.
   */
  #openSession(first?: string): Promise<RemoteSession> {
    const nonce = process.getBuiltinModule("node:crypto").randomBytes(16).toString("hex");
    const shell = `sh -c ${shellQuote(sessionScript)} sh ${nonce}${first === undefined ? "" : ` ${shellQuote(first)}`}`;
    const become = this.identity.become;
    const line = become === undefined ? shell : `sudo -n -u ${shellQuote(become)} -- ${shell}`;
    this.stats.channels += 1;
    return new Promise<RemoteSession>((resolve, reject) => {
      this.#pending.add(reject);
      this.#connection.client.exec(line, (error, stream) => {
        if (error) {
          this.#pending.delete(reject);
          return reject(this.#failure(error, "start a session"));
        }
        const session = new RemoteSession(stream, nonce, (said, exitCode) =>
          this.#sessionFailure(said, exitCode),
        );
        this.#live.add(session);
        session.onEnd = () => {
          this.#live.delete(session);
          const idle = this.#sessions.indexOf(session);
          if (idle >= 0) this.#sessions.splice(idle, 1);
        };
        session.ready.then(
          () => {
            this.#pending.delete(reject);
            resolve(session);
          },
          (failure: unknown) => {
            this.#pending.delete(reject);
            reject(failure);
          },
        );
      });
    });
  }

  /** Opens one more idle session in the background (no error: a command opens its own when needed). */
  #spare(): void {
    this.#guard(() =>
      this.#channels(async () => {
        const session = await this.#openSession();
        if (session.alive && !this.#closing) this.#sessions.push(session);
      }),
    ).catch(() => {});
  }

  #sessionFailure(said: string, exitCode: number | undefined): GalleyError {
    if (this.#lost) return this.#lost;
    const text = said.replaceAll(becomeMarker, "").trim().split("\n").slice(0, 3).join("; ");
    if (this.identity.become !== undefined && exitCode !== undefined && exitCode !== 0) {
      return new GalleyError(
        "BECOME_FAILED",
        `sudo refused to run commands as ${this.identity.become} for ${this.target.user} on ${this.name}: ${text || `exit ${exitCode}`}`,
        {
          hint: `Galley runs sudo -n (it never types a password): give ${this.target.user} passwordless sudo, e.g. '${this.target.user} ALL=(ALL) NOPASSWD: ALL' in /etc/sudoers.d/, or log in as root and drop become`,
        },
      );
    }
    return new GalleyError(
      "EXEC_FAILED",
      `the remote session on ${this.name} ended${exitCode === undefined ? "" : ` (exit ${exitCode})`}${text ? `: ${text}` : ""}`,
      { hint: "Galley runs a POSIX sh on the host (with head and mktemp from coreutils)" },
    );
  }

  /**
   * Signals an interrupted or overdue command (by a `kill` on a channel of its own, as the same
   * user, sudo included): its process group and every process descended from it.
   */
  #kill(signal: string, pid: string): void {
    const line = commandLine(["sh", "-c", killScript, "sh", signal, pid, pid], {}, this.identity);
    this.#guard(() => this.#execChannel(line)).catch(() => {});
  }

  /** Runs one command line on an exec channel of its own (the kill: sessions may all be busy). */
  #execChannel(command: string): Promise<RawResult> {
    return new Promise<RawResult>((resolve, reject) => {
      const started = performance.now();
      this.stats.channels += 1;
      this.#pending.add(reject);
      const done = (result: RawResult | GalleyError) => {
        this.#pending.delete(reject);
        if (result instanceof GalleyError) reject(result);
        else resolve(result);
      };
      this.#connection.client.exec(command, (error, stream) => {
        if (error) return done(this.#failure(error, "start a command"));
        collect(stream, undefined, undefined, started, (result) =>
          done(result ?? this.#lost ?? this.#dropped()),
        );
      });
    });
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
