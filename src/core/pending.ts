import * as path from "node:path";
import { mkdir } from "../hosts/fsops.ts";
import { GalleyError } from "./errors.ts";
import type { Host } from "./host.ts";
import type { PendingNotification } from "./report.ts";

const fileName = "pending-notifications.json";

/**
 * Delayed notifications that must survive a failed or interrupted run, kept on the host under
 * its state dir and delivered by the next run.
 */
export class PendingStore {
  readonly #host: Host;
  readonly #file: string;
  readonly #dir: string;
  #dirReady = false;

  constructor(host: Host, stateDir: string) {
    this.#host = host;
    this.#dir = stateDir;
    this.#file = path.join(stateDir, fileName);
  }

  async load(): Promise<PendingNotification[]> {
    const data = await this.#host.readFile(this.#file);
    if (!data) return [];
    try {
      const parsed = JSON.parse(new TextDecoder().decode(data)) as { notifications?: PendingNotification[] };
      return parsed.notifications ?? [];
    } catch {
      throw new GalleyError("STATE_INVALID", `${this.#file} on ${this.#host.name} is not valid JSON`, {
        hint: "inspect it, then delete it to drop the notifications it held",
      });
    }
  }

  /** Replaces the stored list (atomically). An empty list removes nothing but leaves an empty file. */
  async save(notifications: PendingNotification[]): Promise<void> {
    if (!this.#dirReady) {
      await mkdir(this.#host, this.#dir, { recursive: true, mode: 0o700 });
      this.#dirReady = true;
    }
    const text = `${JSON.stringify({ version: 1, notifications }, null, 2)}\n`;
    await this.#host.writeFile(this.#file, text, { mode: 0o600 });
  }
}
