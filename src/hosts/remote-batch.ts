import { GalleyError } from "../core/errors.ts";
import type { Stat } from "../core/host.ts";
import { shellQuote } from "./remote-command.ts";
import { parseStatRecords, statArgv } from "./remote-stat.ts";
import { readArgv, parseTarEntries } from "./remote-tar.ts";

/** Runs one command on the host (as the become user when there is one) and returns its raw output. */
export type RawRunner = (
  argv: readonly string[],
) => Promise<{ exitCode: number; stdout: Buffer; stderr: string }>;

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** Keeps one command line well under the kernel's 128 KiB limit for a single argument (sh -c). */
const maxCommandBytes = 100_000;

/**
 * Batches reads: every stat() and readFile() asked in one turn of the event loop is answered by
 * one remote command per kind (`find -printf` for stats, `tar` for contents), split only when the
 * command line would get too long. The engine prefetches all reads at once, so a no-op run costs
 * a few round trips instead of one per resource.
 */
export class ReadBatch {
  readonly #run: RawRunner;
  readonly #host: string;
  #stats = new Map<string, Waiter<Stat | undefined>[]>();
  #reads = new Map<string, Waiter<Uint8Array | undefined>[]>();
  #scheduled = false;

  constructor(run: RawRunner, hostName: string) {
    this.#run = run;
    this.#host = hostName;
  }

  stat(path: string): Promise<Stat | undefined> {
    return this.#queue(this.#stats, path);
  }

  readFile(path: string): Promise<Uint8Array | undefined> {
    return this.#queue(this.#reads, path);
  }

  #queue<T>(map: Map<string, Waiter<T>[]>, path: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const waiters = map.get(path);
      if (waiters) waiters.push({ resolve, reject });
      else map.set(path, [{ resolve, reject }]);
      if (!this.#scheduled) {
        this.#scheduled = true;
        // after every promise continuation of this turn: a stat's readFile joins the next batch
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const stats = this.#stats;
    const reads = this.#reads;
    this.#stats = new Map();
    this.#reads = new Map();
    for (const chunk of chunks([...stats.keys()])) {
      void this.#answer(chunk, stats, (paths) => this.#statChunk(paths));
    }
    for (const chunk of chunks([...reads.keys()])) {
      void this.#answer(chunk, reads, (paths) => this.#readChunk(paths));
    }
  }

  async #answer<T>(
    paths: string[],
    waiters: Map<string, Waiter<T>[]>,
    fetch: (paths: string[]) => Promise<Map<string, T | Error>>,
  ): Promise<void> {
    let results: Map<string, T | Error>;
    try {
      results = await fetch(paths);
    } catch (error) {
      for (const path of paths) for (const waiter of waiters.get(path)!) waiter.reject(error);
      return;
    }
    for (const path of paths) {
      const result = results.get(path);
      for (const waiter of waiters.get(path)!) {
        if (result instanceof Error) waiter.reject(result);
        else waiter.resolve(result as T);
      }
    }
  }

  async #statChunk(paths: string[]): Promise<Map<string, Stat | undefined | Error>> {
    const { exitCode, stdout, stderr } = await this.#run(statArgv(paths));
    this.#check("find", exitCode, stderr, 1);
    const found = parseStatRecords(stdout);
    return this.#settle(paths, found, stderr, (path) => this.#statChunk([path]), "stat");
  }

  async #readChunk(paths: string[]): Promise<Map<string, Uint8Array | undefined | Error>> {
    const { exitCode, stdout, stderr } = await this.#run(readArgv(paths));
    this.#check("tar", exitCode, stderr, 2);
    const entries = await parseTarEntries(stdout, paths);
    const found = new Map<string, Uint8Array | Error>();
    for (const [path, entry] of entries) {
      found.set(
        path,
        entry.content ?? this.#error(`cannot read ${path} on ${this.#host}: it is a ${entry.kind}`),
      );
    }
    return this.#settle(paths, found, stderr, (path) => this.#readChunk([path]), "read");
  }

  /**
   * Paths without a record are missing, when the only complaints were "No such file" and "Not a
   * directory". Otherwise something else failed for some of them (permission denied): each such
   * path is asked alone, so that the error lands on the right one.
   */
  async #settle<T>(
    paths: string[],
    found: Map<string, T | Error>,
    stderr: string,
    alone: (path: string) => Promise<Map<string, T | undefined | Error>>,
    verb: string,
  ): Promise<Map<string, T | undefined | Error>> {
    const results = new Map<string, T | undefined | Error>(found);
    const absent = paths.filter((path) => !found.has(path));
    const complaints = stderr.split("\n").filter((line) => line !== "" && !isMissingComplaint(line));
    for (const path of absent) results.set(path, undefined);
    if (complaints.length === 0 || absent.length === 0) return results;
    if (paths.length === 1) {
      results.set(
        paths[0]!,
        this.#error(`cannot ${verb} ${paths[0]} on ${this.#host}: ${complaints.join("; ")}`),
      );
      return results;
    }
    await Promise.all(
      absent.map(async (path) => {
        const single = await alone(path).catch((error: unknown) => new Map([[path, error as Error]]));
        results.set(path, single.get(path));
      }),
    );
    return results;
  }

  #check(tool: string, exitCode: number, stderr: string, worstExpected: number): void {
    if (exitCode <= worstExpected) return;
    throw this.#error(
      `${tool} failed on ${this.#host} (exit ${exitCode}): ${stderr.trim().split("\n").slice(-3).join("; ")}`,
    );
  }

  #error(message: string): GalleyError {
    return new GalleyError("EXEC_FAILED", message, {
      hint: "Galley reads files on a remote host with GNU find and tar: check that they are installed",
    });
  }
}

function isMissingComplaint(line: string): boolean {
  return (
    /: (No such file or directory|Not a directory)$/.test(line) ||
    /^tar: Exiting with failure status/.test(line)
  );
}

/** Splits paths so that each command line stays under maxCommandBytes. */
function chunks(paths: string[]): string[][] {
  const result: string[][] = [];
  let current: string[] = [];
  let size = 0;
  for (const path of paths) {
    const bytes = Buffer.byteLength(shellQuote(path)) + 1;
    if (current.length > 0 && size + bytes > maxCommandBytes) {
      result.push(current);
      current = [];
      size = 0;
    }
    current.push(path);
    size += bytes;
  }
  if (current.length > 0) result.push(current);
  return result;
}
