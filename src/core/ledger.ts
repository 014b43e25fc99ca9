import * as path from "node:path";
import { remove, run, writeDurable } from "./fsops.ts";
import type { CatalogResource } from "./catalog.ts";
import { GalleyError } from "./errors.ts";
import { type Host, hasFs } from "./host.ts";
import { type PendingNotification, redacted, scrub, secretsOf } from "./report.ts";
import type { ResourceType } from "./resource.ts";
import { currentSecrets, type Secrets } from "./secrets.ts";

export const ledgerFile = "notifications.json";
/** a directory present while a run that changes the host is under way: a run that finds it sweeps temp files */
export const runMarker = "converging";
const legacyFile = "pending-notifications.json";

/**
 * One notification in the write-ahead ledger. Written as an `intent` before its source is applied,
 * `pending` once the source changed, removed only after the notified action succeeded. Ids are
 * stored scrubbed of secrets and matched by a salted hash of the real id and its scope.
 */
export interface LedgerEntry {
  /** short id for `galley notifications drop` */
  id: string;
  /** what makes two entries the same notification (hashes and the action) */
  key: string;
  /** the target's id, scrubbed: `(sensitive)` for a sensitive resource's name */
  target: string;
  targetHash: string;
  /** the target's declaring cookbook (`cookbook:NAME`) or recipe file (`file:PATH`); `*` for entries of Galley before 0.2 */
  scope: string;
  /** the recipe that declared the target (`cookbook::recipe`) */
  recipe: string;
  action: string;
  timing: "delayed" | "immediate";
  /** the sources, scrubbed (at most 5 named) */
  by: string[];
  /** immediate: the source's hash, to deliver right after it in the next run */
  sourceHash?: string;
  state: "intent" | "pending";
  /** the run list of the run that recorded it */
  runList: string[];
  since: string;
  /** when a run reported that its target no longer exists */
  reported?: string;
}

interface LedgerData {
  version: 2;
  salt: string;
  entries: LedgerEntry[];
}

/**
 * The notification ledger of a host: `<stateDir>/notifications.json`, rewritten atomically and
 * durably (temp file, fsync, rename, fsync of the folder) at each change.
 */
export class Ledger {
  readonly host: Host;
  readonly stateDir: string;
  entries: LedgerEntry[];
  /** a run was interrupted (its marker is still there), or an older version's file was found */
  readonly interrupted: boolean;
  #salt: string;
  #legacy: boolean;

  private constructor(host: Host, stateDir: string, data: LedgerData, interrupted: boolean, legacy: boolean) {
    this.host = host;
    this.stateDir = stateDir;
    this.entries = data.entries;
    this.#salt = data.salt;
    this.interrupted = interrupted;
    this.#legacy = legacy;
  }

  /**
   * Reads the ledger and the run marker (one batch of reads), and an older version's pending file,
   * whose ids are scrubbed with `secrets` (the run's registry; default `currentSecrets()`).
   */
  static async load(host: Host, stateDir: string, secrets: Secrets = currentSecrets()): Promise<Ledger> {
    const file = path.join(stateDir, ledgerFile);
    const [data, marker, legacy] = await Promise.all([
      host.readFile(file),
      host.stat(path.join(stateDir, runMarker)),
      host.readFile(path.join(stateDir, legacyFile)),
    ]);
    const parsed = data
      ? parse(data, `${file} on ${host.name}`)
      : { version: 2 as const, salt: "", entries: [] };
    const ledger = new Ledger(host, stateDir, parsed, marker !== undefined || legacy !== undefined, !!legacy);
    if (legacy) ledger.#importLegacy(legacy, path.join(stateDir, legacyFile), secrets);
    return ledger;
  }

  /** A salted SHA-256 of a resource id in its scope: what entries are matched by. */
  hash(scope: string, id: string): string {
    if (!this.#salt) this.#salt = randomHex(16);
    const crypto = process.getBuiltinModule("node:crypto");
    return crypto.createHash("sha256").update(`${this.#salt}\0${scope}\0${id}`).digest("hex").slice(0, 32);
  }

  /** Writes the ledger durably; the first write also removes an older version's pending file. */
  async save(): Promise<void> {
    const data: LedgerData = { version: 2, salt: this.#salt, entries: this.entries };
    await writeDurable(this.host, path.join(this.stateDir, ledgerFile), `${JSON.stringify(data, null, 2)}\n`);
    if (this.#legacy) {
      await remove(this.host, path.join(this.stateDir, legacyFile));
      this.#legacy = false;
    }
  }

  /**
   * Records that a run is changing the host, before its first change: a directory, made in one
   * step (a file would need a temp file of its own, which a kill could leave behind).
   */
  async markRunning(): Promise<void> {
    const marker = path.join(this.stateDir, runMarker);
    if (hasFs(this.host)) {
      await this.host.mkdir(this.stateDir, { recursive: true, mode: 0o700 });
      await this.host.mkdir(marker, { recursive: true });
      return;
    }
    await run(this.host, [
      "sh",
      "-c",
      'mkdir -p -m 700 -- "$1" && mkdir -p -- "$2"',
      "sh",
      this.stateDir,
      marker,
    ]);
  }

  async clearRunning(): Promise<void> {
    await remove(this.host, path.join(this.stateDir, runMarker), { recursive: true });
  }

  /** Entries of Galley before 0.2 (`pending-notifications.json`): kept, matched by id in any cookbook. */
  #importLegacy(data: Uint8Array, file: string, secrets: Secrets): void {
    let list: PendingNotification[];
    try {
      list =
        (JSON.parse(new TextDecoder().decode(data)) as { notifications?: PendingNotification[] })
          .notifications ?? [];
    } catch {
      throw new GalleyError("STATE_INVALID", `${file} on ${this.host.name} is not valid JSON`, {
        hint: "inspect it, then delete it to drop the notifications it held",
      });
    }
    for (const old of list) {
      const targetHash = this.hash("*", old.target);
      this.entries.push({
        id: randomHex(4),
        key: `${targetHash}:${old.action}`,
        target: secrets.scrub(old.target),
        targetHash,
        scope: "*",
        recipe: "",
        action: old.action,
        timing: "delayed",
        by: [secrets.scrub(old.by)],
        state: "pending",
        runList: [],
        since: old.since,
      });
    }
  }
}

/** Reads a host's ledger for `galley notifications`: its entries, without taking part in a run. */
export async function readLedger(host: Host, stateDir: string): Promise<Ledger> {
  return Ledger.load(host, stateDir);
}

function parse(data: Uint8Array, where: string): LedgerData {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(data)) as LedgerData;
    if (parsed.version === 2 && Array.isArray(parsed.entries) && typeof parsed.salt === "string")
      return parsed;
  } catch {
    // reported below
  }
  throw new GalleyError("STATE_INVALID", `${where} is not a notification ledger (version 2 JSON)`, {
    hint: "inspect it; delete it to drop the notifications it held (they will not be delivered)",
  });
}

/**
 * What a notification is scoped by: the cookbook that declared the target (or its recipe file):
 * another run list's resource of the same id, declared by another cookbook, is another resource.
 */
export function scopeOf(resource: CatalogResource, byId: ReadonlyMap<string, CatalogResource>): string {
  const recipe = recipeOf(resource, byId);
  const cookbook = /^([^/\\:]+)::/.exec(recipe);
  return cookbook ? `cookbook:${cookbook[1]}` : `file:${path.resolve(recipe)}`;
}

/** The recipe that declared a resource, or the composite at the top of its chain. */
export function recipeOf(resource: CatalogResource, byId: ReadonlyMap<string, CatalogResource>): string {
  let root = resource;
  for (let up = resource.parent; up !== undefined; up = root.parent) {
    const parent = byId.get(up);
    if (!parent) break;
    root = parent;
  }
  return root.source.recipe;
}

/**
 * A resource id fit to be written down: a sensitive resource's name and any secret of the run
 * (of `secrets`, its registry) hidden.
 */
export function publicId(
  resource: CatalogResource,
  type: ResourceType | undefined,
  secrets: Secrets,
): string {
  if (resource.sensitive) return `${resource.type}[${redacted}]`;
  return secrets.scrub(type ? scrub(resource.id, secretsOf(resource, type)) : resource.id);
}

/** How an entry appears in a report. */
export function asPending(entry: LedgerEntry): PendingNotification {
  return { target: entry.target, action: entry.action, by: entry.by.join(", "), since: entry.since };
}

/** Random hex digits (node:crypto loaded on first use). */
export function randomHex(bytes: number): string {
  return process.getBuiltinModule("node:crypto").randomBytes(bytes).toString("hex");
}
