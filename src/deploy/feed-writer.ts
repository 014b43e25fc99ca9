import { errorMessage } from "../core/errors.ts";
import type { FeedInput, Store } from "../store/store.ts";

// The feed's batching writer: runners' entries for one stack, appended in order a batch at a time
// (one transaction per ~100 ms or 500 entries), never failing the run that writes them.

/** A feed entry as a runner gives it: its writer adds the stack and the time. */
export type FeedLine = Omit<FeedInput, "stack">;

/** How a FeedWriter batches. */
export interface FeedWriterOptions {
  /** how long an entry may wait for its batch (default 100 ms) */
  flushMs?: number;
  /** a batch this large is written at once (default 500) */
  maxBatch?: number;
  /** where the first failed write is said (later ones are not) */
  log?: ((line: string) => void) | undefined;
}

/**
 * Appends one stack's feed entries in batches: one `appendFeed` per flush, every ~100 ms or 500
 * entries, in the order given. It never throws into the run: a failed write is logged once and its
 * entries are dropped. `close()` (awaited at the end of a run) writes what is left.
 *
 * @example const feed = new FeedWriter(store, "web"); feed.append({ kind: "log", data: { line } }); await feed.close()
 */
export class FeedWriter {
  readonly stack: string;
  readonly #store: Pick<Store, "appendFeed">;
  readonly #flushMs: number;
  readonly #maxBatch: number;
  readonly #log: ((line: string) => void) | undefined;
  #buffer: FeedInput[] = [];
  #timer: NodeJS.Timeout | undefined;
  #writes: Promise<void> = Promise.resolve();
  #failed = false;
  #closed = false;

  constructor(store: Pick<Store, "appendFeed">, stack: string, options: FeedWriterOptions = {}) {
    this.#store = store;
    this.stack = stack;
    this.#flushMs = options.flushMs ?? 100;
    this.#maxBatch = options.maxBatch ?? 500;
    this.#log = options.log;
  }

  /** Queues an entry (dropped once the writer is closed). */
  append(entry: FeedLine): void {
    if (this.#closed) return;
    this.#buffer.push({ ...entry, stack: this.stack, at: entry.at ?? new Date().toISOString() });
    if (this.#buffer.length >= this.#maxBatch) void this.flush();
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }

  /** Writes what is queued; resolves once every earlier write ended. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#buffer;
    if (batch.length > 0) {
      this.#buffer = [];
      this.#writes = this.#writes.then(() => this.#write(batch));
    }
    return this.#writes;
  }

  /** Writes what is left; later appends are dropped. */
  close(): Promise<void> {
    this.#closed = true;
    return this.flush();
  }

  async #write(batch: FeedInput[]): Promise<void> {
    try {
      await this.#store.appendFeed(batch);
    } catch (error) {
      if (this.#failed) return;
      this.#failed = true;
      this.#log?.(`feed of stack ${this.stack}: ${batch.length} entries not written: ${errorMessage(error)}`);
    }
  }
}
