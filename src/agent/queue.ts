import * as fs from "node:fs/promises";
import * as path from "node:path";
import type { AgentRunReport } from "../fleet/agent-protocol.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

// The agent's reports not yet acknowledged, one file each (`queue/<seq>.json`, written durably),
// and the counter that numbers them (`seq`). A report leaves the queue only when the server
// acknowledged its seq, so an outage or a restart of the agent loses none; the server stores by
// seq, so one sent twice is stored once.

/** A durable queue of run reports under the agent's state dir. */
export class ReportQueue {
  readonly #dir: string;
  readonly #seqFile: string;
  // one change at a time: two reports never draw the same seq
  #chain: Promise<unknown> = Promise.resolve();

  constructor(stateDir: string) {
    this.#dir = path.join(stateDir, "queue");
    this.#seqFile = path.join(stateDir, "seq");
  }

  /** Numbers a report with the next seq (the counter is written durably first) and queues it. */
  enqueue(report: Omit<AgentRunReport, "seq">): Promise<AgentRunReport> {
    return this.#serial(async () => {
      await fs.mkdir(this.#dir, { recursive: true, mode: 0o700 });
      const seq = (await this.#lastSeq()) + 1;
      await writeFileAtomic(this.#seqFile, `${seq}\n`, { mode: 0o600 });
      const run: AgentRunReport = { ...report, seq };
      await writeFileAtomic(this.#file(seq), `${JSON.stringify(run)}\n`, { mode: 0o600 });
      return run;
    });
  }

  /** The reports waiting for an acknowledgement, oldest first. */
  async pending(): Promise<AgentRunReport[]> {
    const runs: AgentRunReport[] = [];
    for (const seq of await this.#seqs()) {
      try {
        runs.push(JSON.parse(await fs.readFile(this.#file(seq), "utf8")) as AgentRunReport);
      } catch {
        // acknowledged meanwhile (removed), or torn beyond repair: nothing to send
      }
    }
    return runs;
  }

  /** The server stored report `seq`: it leaves the queue. */
  ack(seq: number): Promise<void> {
    return this.#serial(() => fs.rm(this.#file(seq), { force: true }));
  }

  /** The last seq drawn: the counter file, or the queue's highest when the counter is lost. */
  async #lastSeq(): Promise<number> {
    const text = await fs.readFile(this.#seqFile, "utf8").catch(() => "");
    const counted = Number.parseInt(text, 10);
    const queued = Math.max(0, ...(await this.#seqs()));
    return Math.max(Number.isSafeInteger(counted) ? counted : 0, queued);
  }

  async #seqs(): Promise<number[]> {
    const names = await fs.readdir(this.#dir).catch(() => [] as string[]);
    return names
      .map((name) => /^(\d+)\.json$/.exec(name)?.[1])
      .filter((seq): seq is string => seq !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  #file(seq: number): string {
    return path.join(this.#dir, `${seq}.json`);
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(work, work);
    this.#chain = next.catch(() => {});
    return next;
  }
}
