import type { ClientChannel } from "ssh2";

/**
 * One long-lived `sh` on one SSH channel that runs commands one after the other: a command costs
 * one round trip (the request out, its output back) instead of three (open a channel, exec, close).
 * Nothing is installed on the host: the session is a POSIX shell script given on the exec line.
 *
 * A request is `<bytes of the command line> <bytes of stdin or -1>\n`, the command line, then its
 * stdin. The session copies stdin to a private file (so a command that stops reading cannot eat
 * the next request), starts the command in a process group of its own (`setsid`, when the host has
 * it), says its pid on stderr, waits for it, and ends its stdout and stderr with a line holding
 * the session's random nonce and the exit status. A first command may come with the exec line
 * itself (`sh -c SCRIPT sh NONCE FIRST`): its output precedes the ready line, which holds its status.
 */
export const sessionScript = [
  "n=$1",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'd=$(mktemp -d "${TMPDIR:-/tmp}/galley-session-XXXXXXXX") || exit 1',
  "trap 'rm -rf -- \"$d\"' EXIT",
  "trap 'exit 129' HUP; trap 'exit 143' TERM; trap 'exit 141' PIPE",
  'g=""; command -v setsid >/dev/null 2>&1 && g=setsid',
  // a first command given on the exec line (the facts): its output comes before the ready line,
  // which says its status, so the session and its first answer cost one round trip together
  'r=0; if [ -n "$2" ]; then sh -c "$2" </dev/null; r=$?; fi',
  'printf "\\n%s R %s\\n" "$n" "$r"',
  "while IFS=' ' read -r l s; do",
  // the trailing x keeps the command line's own trailing newlines
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  '  c=$(head -c "$l"; echo x); c=${c%x}',
  '  if [ "$s" -ge 0 ]; then head -c "$s" > "$d/in"; i="$d/in"; else i=/dev/null; fi',
  '  $g sh -c "exec $c" < "$i" &',
  '  p=$!; printf "%s P %s\\n" "$n" "$p" >&2',
  '  wait "$p" 2>/dev/null; r=$?',
  // killed (a timeout, an interrupt): the rest of its process group is dying too; let it finish
  '  if [ "$r" -gt 128 ] && [ -n "$g" ]; then k=0; while kill -0 "-$p" 2>/dev/null && [ $k -lt 50 ]; do sleep 0.01; k=$((k + 1)); done; fi',
  '  printf "%s E\\n" "$n" >&2; printf "%s X %s\\n" "$n" "$r"',
  "done",
].join("\n");

/** What one command of a session gave back. */
export interface SessionResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  durationMs: number;
}

interface Current {
  stdout: Buffer[];
  stderr: Buffer[];
  /** the command's pid (its process group with setsid), once the session said it */
  pid: string | undefined;
  outDone: number | undefined;
  errDone: boolean;
  started: number;
  onPid: ((pid: string) => void) | undefined;
  resolve(result: SessionResult): void;
  reject(error: unknown): void;
}

/**
 * The client side of one session: `run` sends a request and resolves with its result; one command
 * at a time (the pool in SshHost keeps several sessions for concurrency).
 */
export class RemoteSession {
  readonly #stream: ClientChannel;
  readonly #nonce: string;
  #current: Current | undefined;
  #ended = false;
  #startupErr: Buffer[] = [];
  #startupOut: Buffer[] = [];
  /** resolves when the session said it is ready; rejects with what its stderr said if it ended first */
  readonly ready: Promise<void>;
  /** what the first command given with the exec line printed, and its status (once ready) */
  startup: { stdout: Buffer; exitCode: number } = { stdout: Buffer.alloc(0), exitCode: 0 };
  /** called once when the channel closes (connection lost, session ended, or close()) */
  onEnd: ((why: Error) => void) | undefined;

  constructor(stream: ClientChannel, nonce: string, failure: (said: string, exitCode?: number) => Error) {
    this.#stream = stream;
    this.#nonce = nonce;
    let exitCode: number | undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      const startupOut = (chunk: Buffer) => {
        this.#startupOut.push(chunk);
        const all = Buffer.concat(this.#startupOut);
        this.#startupOut = [all];
        // the ready line is last (nothing more comes until a request); the newline before it is the session's
        const text = all.toString("latin1");
        const at = text.lastIndexOf(`\n${nonce} R `);
        const status = at < 0 ? null : /^(\d+)\n$/.exec(text.slice(at + nonce.length + 4));
        if (!status) return;
        this.startup = { stdout: all.subarray(0, at), exitCode: Number(status[1]) };
        stream.off("data", startupOut);
        stream.on("data", (data: Buffer) => this.#onStdout(data));
        stream.stderr.off("data", startupErr);
        stream.stderr.on("data", (data: Buffer) => this.#onStderr(data));
        resolve();
      };
      const startupErr = (chunk: Buffer) => this.#startupErr.push(chunk);
      stream.on("data", startupOut);
      stream.stderr.on("data", startupErr);
      stream.on("exit", (code: number | null) => {
        exitCode = code ?? undefined;
      });
      stream.on("error", () => {});
      stream.on("close", () => {
        this.#ended = true;
        const said = Buffer.concat(this.#startupErr).toString("utf8");
        const error = failure(said, exitCode);
        reject(error);
        const current = this.#current;
        this.#current = undefined;
        current?.reject(error);
        this.onEnd?.(error);
      });
    });
    this.ready.catch(() => {});
  }

  /** What the session said on stderr before it was ready (the first command's complaints). */
  get startupStderr(): string {
    return Buffer.concat(this.#startupErr).toString("utf8");
  }

  /** Whether the session can take another command. */
  get alive(): boolean {
    return !this.#ended;
  }

  /**
   * Runs one command line with `input` as its stdin (none: /dev/null). `onPid` learns the
   * command's pid (and process group) as soon as the session says it.
   */
  run(command: string, input?: Uint8Array, onPid?: (pid: string) => void): Promise<SessionResult> {
    if (this.#current) return Promise.reject(new Error("a session runs one command at a time"));
    return new Promise<SessionResult>((resolve, reject) => {
      if (this.#ended) return reject(new Error("the session ended"));
      const line = Buffer.from(command, "utf8");
      this.#current = {
        stdout: [],
        stderr: [],
        pid: undefined,
        outDone: undefined,
        errDone: false,
        started: performance.now(),
        onPid,
        resolve,
        reject,
      };
      const header = Buffer.from(`${line.length} ${input === undefined ? -1 : input.length}\n`);
      this.#stream.write(
        input === undefined ? Buffer.concat([header, line]) : Buffer.concat([header, line, input]),
      );
    });
  }

  /** Ends the session: its shell sees end of input and exits (removing its private directory). */
  close(): void {
    if (this.#ended) return;
    this.#stream.end();
  }

  /** Closes the channel at once: for a session that stopped answering. */
  destroy(): void {
    this.#stream.close();
  }

  #onStdout(chunk: Buffer): void {
    const current = this.#current;
    if (!current) return; // output of a process the last command left behind: not ours
    current.stdout.push(chunk);
    const status = trailer(current.stdout, `${this.#nonce} X `);
    if (status === undefined) return;
    current.stdout = [status.before];
    current.outDone = status.value;
    this.#settle(current);
  }

  #onStderr(chunk: Buffer): void {
    const current = this.#current;
    if (!current) return;
    current.stderr.push(chunk);
    if (current.pid === undefined) {
      const all = Buffer.concat(current.stderr);
      const marker = Buffer.from(`${this.#nonce} P `);
      const at = all.indexOf(marker);
      const end = at < 0 ? -1 : all.indexOf(10, at);
      if (end >= 0) {
        current.pid = all.toString("latin1", at + marker.length, end);
        current.stderr = [Buffer.concat([all.subarray(0, at), all.subarray(end + 1)])];
        current.onPid?.(current.pid);
      } else current.stderr = [all];
    }
    if (current.pid === undefined) return;
    const end = trailer(current.stderr, `${this.#nonce} E`);
    if (end === undefined) return;
    current.stderr = [end.before];
    current.errDone = true;
    this.#settle(current);
  }

  #settle(current: Current): void {
    if (current.outDone === undefined || !current.errDone) return;
    this.#current = undefined;
    current.resolve({
      exitCode: current.outDone,
      stdout: Buffer.concat(current.stdout),
      stderr: Buffer.concat(current.stderr),
      durationMs: performance.now() - current.started,
    });
  }
}

/**
 * When the chunks end with `<prefix><digits>\n` (or `<prefix>\n`), the bytes before it and the
 * number. The marker is always last (the session writes nothing more until the next request), and
 * follows the command's last byte directly when that was not a newline.
 */
function trailer(chunks: Buffer[], prefix: string): { before: Buffer; value: number } | undefined {
  const last = chunks[chunks.length - 1]!;
  if (last.length === 0 || last[last.length - 1] !== 10) return undefined;
  // only the end can hold the marker: look at the last few hundred bytes
  let size = 0;
  let from = chunks.length;
  while (from > 0 && size < 256) size += chunks[--from]!.length;
  const tail = from === chunks.length - 1 ? last : Buffer.concat(chunks.slice(from));
  const at = tail.lastIndexOf(prefix.trimEnd());
  if (at < 0) return undefined;
  const rest = tail.toString("latin1", at + prefix.trimEnd().length, tail.length - 1).trim();
  if (rest !== "" && !/^\d+$/.test(rest)) return undefined;
  const before = Buffer.concat([...chunks.slice(0, from), tail.subarray(0, at)]);
  return { before, value: rest === "" ? 0 : Number(rest) };
}
