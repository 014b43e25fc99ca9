import { chmodSync, closeSync, mkdirSync, openSync, statSync } from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { SqliteDatabase } from "./sqlite-database.ts";
import { errorMessage, GalleyError, isGalleyError } from "../core/errors.ts";
import { currentSecrets, type Secrets } from "../core/secrets.ts";
import { migrate } from "./migrations.ts";
import { defaultRetention, type Retention } from "./sqlite-server.ts";
import { SqliteStore } from "./sqlite-store.ts";
import type { Store } from "./store.ts";

/** Where a kitchen keeps its store: `<kitchen>/.galley/galley.db`. */
export function storeFile(kitchen: string): string {
  return path.join(kitchen, ".galley", "galley.db");
}

/**
 * How to open a store: the registry whose secrets it scrubs, kept for the store's life (default:
 * the current one when it is opened, `currentSecrets()`: the CLI command's, or the process's
 * outside any run).
 */
export interface SqliteStoreOptions {
  /** a run's registry (`new Secrets(processSecrets)`): scrubs the run's secrets and the process's */
  secrets?: Secrets | undefined;
  /** how much agent history to keep (default: metrics 7 days, 500 runs per instance, pruned every 100th insert) */
  retention?: Partial<Retention> | undefined;
}

/**
 * Opens (creating it and its folder if needed) the SQLite store at `file` and brings its schema up
 * to date. WAL mode, so readers never wait for a writer; several processes may open the same file.
 * The folder is made 0700 and the database 0600 (with its -wal and -shm files) before anything is
 * written; looser modes of existing ones are tightened.
 *
 * @example const store = openSqliteStore(storeFile(kitchen)); try { … } finally { store.close(); }
 */
export function openSqliteStore(file: string, options: SqliteStoreOptions = {}): Store {
  let db: DatabaseSync | undefined;
  try {
    makePrivate(file);
    db = new DatabaseSync(file);
    // wait for another process's write lock instead of failing at once
    db.exec("PRAGMA busy_timeout = 10000");
    db.exec("PRAGMA foreign_keys = ON");
    const mode = db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode;
    if (mode !== "wal")
      throw new Error(`the file system does not allow WAL mode (journal mode: ${String(mode)})`);
    // in WAL mode NORMAL is still crash safe; only the last commits may be lost on power loss
    db.exec("PRAGMA synchronous = NORMAL");
    migrate(db, file);
    const secrets = options.secrets ?? currentSecrets();
    const retention = { ...defaultRetention, ...options.retention };
    return new SqliteStore(
      { db: new SqliteDatabase(db, file, secrets, retention), gate: undefined },
      undefined,
    );
  } catch (error) {
    db?.close();
    if (isGalleyError(error)) throw error;
    throw new GalleyError("STATE_INVALID", `${file}: cannot open the store: ${errorMessage(error)}`, {
      hint: "the store must be a Galley SQLite database on a local file system; move a damaged file away to start afresh",
      cause: error,
    });
  }
}

/**
 * The store holds stacks, reports and logs: only its owner may read it, like ~/.ssh. The database
 * file is created 0600 before SQLite opens it, because SQLite gives the -wal and -shm files it
 * creates the database file's mode.
 */
function makePrivate(file: string): void {
  const dir = path.dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  tighten(dir, 0o700);
  closeSync(openSync(file, "a", 0o600));
  for (const each of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) tighten(each, 0o600);
}

/** Clears the permission bits of `target` outside `allowed`; a missing file, or one we may not chmod, is left. */
function tighten(target: string, allowed: number): void {
  const mode = statSync(target, { throwIfNoEntry: false })?.mode;
  if (mode === undefined || (mode & 0o777 & ~allowed) === 0) return;
  try {
    chmodSync(target, mode & 0o777 & allowed);
  } catch (error) {
    // another user's file (a shared kitchen): its owner decides
    if ((error as NodeJS.ErrnoException).code !== "EPERM") throw error;
  }
}
