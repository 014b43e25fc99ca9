import * as fs from "node:fs/promises";
import * as v from "valibot";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

/** One commit (and subdir of its repository) whose export has a copy's content. */
export interface CopyOrigin {
  commit: string;
  /** normalized, "" for the repository's top */
  subdir: string;
}

/** `<copy>.origin.json`: the digest of a git cookbook's copy and every commit it was exported from. */
export interface OriginRecord {
  sha256: string;
  commits: CopyOrigin[];
}

const recordSchema = v.object({
  sha256: v.string(),
  commits: v.array(v.object({ commit: v.string(), subdir: v.string() })),
});

/** Where the origin of a copy (a cache or vendored folder) is recorded: beside it, outside its digest. */
export function originFileOf(dir: string): string {
  return `${dir.replace(/[/\\]+$/, "")}.origin.json`;
}

/** The recorded origin of a copy, or undefined when none was recorded (or it is unreadable). */
export async function readOrigin(dir: string): Promise<OriginRecord | undefined> {
  const text = await fs.readFile(originFileOf(dir), "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const result = v.safeParse(recordSchema, JSON.parse(text));
    return result.success ? result.output : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the copy's record says content `sha256` was exported from `origin`. */
export function recordsOrigin(record: OriginRecord | undefined, sha256: string, origin: CopyOrigin): boolean {
  return (
    record?.sha256 === sha256 &&
    record.commits.some((c) => c.commit === origin.commit && c.subdir === origin.subdir)
  );
}

/**
 * Records that the copy in `dir` (content `sha256`) is the export of `origin`: added to what is
 * recorded for that content, replacing a record of other content. Written atomically.
 */
export async function recordOrigin(dir: string, sha256: string, origin: CopyOrigin): Promise<void> {
  const previous = await readOrigin(dir);
  if (recordsOrigin(previous, sha256, origin)) return;
  const commits = previous?.sha256 === sha256 ? [...previous.commits, origin] : [origin];
  const file = originFileOf(dir);
  await writeFileAtomic(file, `${JSON.stringify({ sha256, commits }, null, 2)}\n`);
}
