import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import type { WriteOptions } from "../core/host.ts";
import { tempPath } from "../core/temp-files.ts";

/** Runs one script (`sh -c`) with its arguments and stdin on the host, in the host's session. */
export type ScriptRunner = (
  argv: readonly string[],
  input: Uint8Array,
) => Promise<{ exitCode: number; stdout: Buffer; stderr: string }>;

interface Pending {
  file: string;
  data: Uint8Array;
  options: WriteOptions;
  resolve(): void;
  reject(error: unknown): void;
}

/** Keeps one command line well under the kernel's 128 KiB limit for one argument. */
const maxArgBytes = 100_000;
/** Keeps one command's stdin (every file's content) in memory at a reasonable size. */
const maxInputBytes = 64 * 1024 * 1024;

/**
 * Per file, in order: copies its bytes from stdin (offset, size) into a new temp file beside it
 * (O_EXCL, fsync), sets owner then mode (a chown clears setuid bits), keeps a backup of the file
 * it replaces when asked, and renames the temp file over the file. A mode without x or special
 * bits is given by the umask at creation (one process less per file); others get a chmod. Says `<n> ok` or `<n> fail
 * <why>` per file on stdout; a failed file's temp file is removed and the next file goes on.
 * $1 is the backups' time stamp, then 7 words per file: file temp mode owner size backup-dir keep.
 */
export const writeScript = `umask 077
s=$1; shift; at=0; k=0; e=$(mktemp) || exit 1
trap 'rm -f -- "$e"' EXIT
keep() {
  base=\${f##*/}
  mkdir -p -- "$b" && chmod 700 -- "$b" && cp -- "$f" "$b/.$base.galley-tmp-$s" && mv -f -- "$b/.$base.galley-tmp-$s" "$b/$base.$s" || return
  (cd -- "$b" && ls -1A | while IFS= read -r x; do
    case "$x" in "$base".[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]) printf '%s\\n' "$x" ;; esac
  done | sort -r | tail -n +"$((n + 1))" | while IFS= read -r x; do rm -f -- "$x"; done)
}
w() {
  case "$m" in
    [0246][0246][0246]) r=\${m#?}; u=$((7 - \${m%??}))$((7 - \${r%?}))$((7 - \${m#??})); c="" ;;
    *) u=077; c=1 ;;
  esac
  (umask "$u"; exec dd if=/dev/stdin of="$t" bs=65536 iflag=skip_bytes,count_bytes skip="$from" count="$z" conv=excl,fsync status=none) || return
  if [ -n "$o" ]; then chown -- "$o" "$t" || return; fi
  if [ -n "$c" ]; then chmod "$m" "$t" || return; fi
  if [ -n "$b" ] && [ -f "$f" ]; then keep || return; fi
  mv -f -T -- "$t" "$f"
}
while [ $# -ge 7 ]; do
  f=$1; t=$2; m=$3; o=$4; z=$5; b=$6; n=$7; shift 7
  k=$((k + 1)); from=$at; at=$((at + z))
  if w 2>"$e"; then echo "$k ok"; else rm -f -- "$t"; printf '%s fail %s\\n' "$k" "$(tr '\\n' ' ' < "$e")"; fi
done`;

/**
 * Batches writes: every writeFile asked in one turn of the event loop travels in one command, the
 * contents of all files in its one stdin stream; temp files, fsyncs, owners, modes, backups and
 * renames run there, one file after the other. Each file is still atomic (temp, fsync, rename) and
 * fails alone.
 */
export class WriteBatch {
  readonly #run: ScriptRunner;
  readonly #host: string;
  #queue: Pending[] = [];
  #scheduled = false;

  constructor(run: ScriptRunner, hostName: string) {
    this.#run = run;
    this.#host = hostName;
  }

  /** Queues a write; resolves when the file is in place. */
  write(file: string, data: Uint8Array, options: WriteOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ file, data, options, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // after every continuation of this turn: the writes of a wave's concurrent applies join
      setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    let chunk: Pending[] = [];
    let args = 0;
    let bytes = 0;
    for (const pending of queue) {
      const size = Buffer.byteLength(pending.file) * 2 + 200;
      if (chunk.length > 0 && (args + size > maxArgBytes || bytes + pending.data.length > maxInputBytes)) {
        void this.#send(chunk);
        chunk = [];
        args = 0;
        bytes = 0;
      }
      chunk.push(pending);
      args += size;
      bytes += pending.data.length;
    }
    if (chunk.length > 0) void this.#send(chunk);
  }

  async #send(chunk: Pending[]): Promise<void> {
    const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
    const words: string[] = [stamp];
    for (const { file, data, options } of chunk) {
      const owner = ownerSpec(options);
      const backup = options.backup;
      words.push(
        file,
        tempPath(file),
        (options.mode ?? 0o644).toString(8),
        owner ?? "",
        String(data.length),
        backup ? path.posix.join(backup.dir) : "",
        backup ? String(backup.keep) : "0",
      );
    }
    const input = Buffer.concat(chunk.map((pending) => pending.data));
    let result: Awaited<ReturnType<ScriptRunner>>;
    try {
      result = await this.#run(["sh", "-c", writeScript, "sh", ...words], input);
    } catch (error) {
      for (const pending of chunk) pending.reject(error);
      return;
    }
    const outcomes = new Map<number, string>();
    for (const line of result.stdout.toString("utf8").split("\n")) {
      const match = /^(\d+) (ok|fail)(?: (.*))?$/s.exec(line);
      if (match) outcomes.set(Number(match[1]), match[2] === "ok" ? "" : (match[3] ?? "").trim());
    }
    chunk.forEach((pending, i) => {
      const outcome = outcomes.get(i + 1);
      if (outcome === "") {
        pending.resolve();
        return;
      }
      const why = outcome ?? (result.stderr.trim() || `the write command exited ${result.exitCode}`);
      pending.reject(
        new GalleyError("APPLY_FAILED", `cannot write ${pending.file} on ${this.#host}: ${why}`, {
          hint: "check that the directory exists and that the user Galley runs as may write there",
        }),
      );
    });
  }
}

/** The `chown` argument for an owner and a group, or undefined when neither is given. */
function ownerSpec(options: WriteOptions): string | undefined {
  if (options.owner === undefined && options.group === undefined) return undefined;
  return `${options.owner ?? ""}${options.group === undefined ? "" : `:${options.group}`}`;
}
