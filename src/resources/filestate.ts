import { createRequire } from "node:module";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { type Host, hasFs, keepsBackups } from "../core/host.ts";
import * as v from "valibot";
import {
  type ApplyContext,
  type AutoRequire,
  type Change,
  described,
  formatMode,
  modeSchema,
  optional,
} from "../core/resource.ts";
import { currentSecrets } from "../core/secrets.ts";
import { chmod, chown, list, mkdir, remove } from "../core/fsops.ts";
import { tempPath } from "../core/temp-files.ts";

/**
 * Content, mode and ownership of one regular file: the shared read/diff/apply of `file`,
 * `template` and `remote_file`, split per aspect as in mgmt's file resource.
 */
export interface FileState {
  type: "file" | "directory" | "symlink" | "other";
  content: Uint8Array | undefined;
  /** computed on first use */
  readonly sha256: string | undefined;
  mode: number;
  owner: string;
  group: string;
}

/** The desired side: `content` undefined means the content is not managed. */
export interface DesiredFile {
  path: string;
  content?: Uint8Array | undefined;
  mode?: number | undefined;
  owner?: string | undefined;
  group?: string | undefined;
  /** how many backups of replaced content to keep (0: none) */
  backup?: number | undefined;
  /** a command that must accept the new content before it replaces the file; %{path} is the temp file */
  verify?: string | undefined;
}

export async function readFileState(
  host: Host,
  file: string,
  withContent = true,
): Promise<FileState | undefined> {
  // a remote host answers the content in the same round trip as the stat (both batched); a local
  // one reads only after the stat said it is a regular file (never a FIFO that would block)
  const early =
    withContent && !hasFs(host) ? host.readFile(file).catch((error: unknown) => error) : undefined;
  const stat = await host.stat(file);
  if (!stat) return undefined;
  let content: Uint8Array | undefined;
  if (withContent && stat.type === "file") {
    const read = early ? await early : await host.readFile(file);
    if (read instanceof Error) throw read;
    content = read as Uint8Array | undefined;
  }
  let hash: string | undefined;
  return {
    type: stat.type,
    content,
    get sha256() {
      hash ??= content ? sha256(content) : undefined;
      return hash;
    },
    mode: stat.mode,
    owner: stat.owner,
    group: stat.group,
  };
}

export function diffFile(current: FileState | undefined, desired: DesiredFile): Change[] {
  if (!current) {
    const changes: Change[] = [{ property: "ensure", from: "absent", to: "file" }];
    if (desired.content !== undefined) changes.push(contentChange(desired.path, undefined, desired.content));
    return [...changes, ...diffAttributes(undefined, desired)];
  }
  if (current.type !== "file") return [{ property: "type", from: current.type, to: "file" }];
  const changes: Change[] = [];
  if (desired.content !== undefined && !sameBytes(current.content, desired.content)) {
    changes.push(contentChange(desired.path, current.content, desired.content));
  }
  return [...changes, ...diffAttributes(current, desired)];
}

/** mode, owner and group: the aspects shared with directories. */
export function diffAttributes(
  current: { mode: number; owner: string; group: string } | undefined,
  desired: { mode?: number | undefined; owner?: string | undefined; group?: string | undefined },
): Change[] {
  const changes: Change[] = [];
  if (desired.mode !== undefined && current?.mode !== desired.mode) {
    changes.push({ property: "mode", from: formatMode(current?.mode), to: formatMode(desired.mode) });
  }
  if (desired.owner !== undefined && current?.owner !== desired.owner) {
    changes.push({ property: "owner", from: current?.owner, to: desired.owner });
  }
  if (desired.group !== undefined && current?.group !== desired.group) {
    changes.push({ property: "group", from: current?.group, to: desired.group });
  }
  return changes;
}

export async function applyFile(
  host: Host,
  desired: DesiredFile,
  current: FileState | undefined,
  context: ApplyContext,
): Promise<void> {
  if (current && current.type !== "file") {
    throw new GalleyError("APPLY_FAILED", `${desired.path} is a ${current.type}, not a file`, {
      hint: "remove it first (a directory or link resource with action delete), or choose another path",
    });
  }
  const contentDiffers = desired.content !== undefined && !sameBytes(current?.content, desired.content);
  if (!current || contentDiffers) {
    const content = desired.content ?? new Uint8Array();
    if (desired.verify) await verifyContent(host, desired, content);
    // a sensitive file's content is never copied in clear: no backup, and older ones go
    let kept: { dir: string; keep: number } | undefined;
    if (isSensitive(context, current?.content, content)) await removeBackups(host, desired.path, context);
    else if (current?.content && (desired.backup ?? 0) > 0) {
      // a host that keeps the backup in the write itself saves a command (over SSH, a round trip)
      if (keepsBackups(host))
        kept = {
          dir: path.join(context.stateDir, "backup", path.dirname(desired.path)),
          keep: desired.backup!,
        };
      else await backup(host, desired.path, current.content, desired.backup!, context);
    }
    // keep what is not managed as it was on the host
    await host.writeFile(desired.path, content, {
      mode: desired.mode ?? current?.mode ?? 0o644,
      ...optional("owner", desired.owner ?? current?.owner),
      ...optional("group", desired.group ?? current?.group),
      ...optional("backup", kept),
    });
    return;
  }
  if (desired.mode !== undefined && current.mode !== desired.mode)
    await chmod(host, desired.path, desired.mode);
  const owner = desired.owner !== undefined && current.owner !== desired.owner ? desired.owner : undefined;
  const group = desired.group !== undefined && current.group !== desired.group ? desired.group : undefined;
  await chown(host, desired.path, owner, group);
}

/** Whether two byte arrays hold the same bytes. */
export function sameBytes(a: Uint8Array | undefined, b: Uint8Array): boolean {
  return a !== undefined && Buffer.compare(a, b) === 0;
}

export function sha256(data: Uint8Array): string {
  // loaded on first use: node:crypto takes 10 ms to load, and a run where nothing changed hashes nothing
  return process.getBuiltinModule("node:crypto").createHash("sha256").update(data).digest("hex");
}

const maxDiffBytes = 512 * 1024;

/** A content change with a unified diff when both sides are text of a readable size. */
// loaded on the first content change: a run where nothing changed never pays for its 19 modules
let diffModule: typeof import("diff") | undefined;
function textDiff(): typeof import("diff").createTwoFilesPatch {
  diffModule ??= createRequire(import.meta.url)("diff") as typeof import("diff");
  return diffModule.createTwoFilesPatch;
}

export function contentChange(file: string, from: Uint8Array | undefined, to: Uint8Array): Change {
  const change: Change = {
    property: "content",
    from: from ? `sha256:${sha256(from).slice(0, 12)}` : undefined,
    to: `sha256:${sha256(to).slice(0, 12)}`,
  };
  if (isText(from) && isText(to)) {
    const decoder = new TextDecoder();
    change.diff = textDiff()(
      from ? file : "/dev/null",
      file,
      from ? decoder.decode(from) : "",
      decoder.decode(to),
      undefined,
      undefined,
      { context: 3 },
    )
      .split("\n")
      .filter((line) => !line.startsWith("Index: ") && !line.startsWith("====")) // keep the ---/+++ header
      .join("\n")
      .trimEnd();
  }
  return change;
}

function isText(data: Uint8Array | undefined): boolean {
  return data === undefined || (data.length <= maxDiffBytes && !data.includes(0));
}

async function verifyContent(host: Host, desired: DesiredFile, content: Uint8Array): Promise<void> {
  const temp = tempPath(desired.path, "verify");
  await host.writeFile(temp, content, { mode: 0o600 });
  try {
    const command = desired.verify!.replaceAll("%{path}", temp);
    const result = await host.exec(["sh", "-c", command]);
    if (result.exitCode !== 0) {
      throw new GalleyError(
        "APPLY_FAILED",
        `verify command refused the new content of ${desired.path}: ${command} exited ${result.exitCode}: ${(result.stderr || result.stdout).trim()}`,
        {
          hint: "the file was left as it was; fix the content or the verify command",
        },
      );
    }
  } finally {
    await remove(host, temp);
  }
}

/** Whether a file's old or new content must not be copied: the resource is sensitive, or holds a secret of the run. */
function isSensitive(context: ApplyContext, ...contents: (Uint8Array | undefined)[]): boolean {
  if (context.sensitive) return true;
  // the engine always passes the run's registry; a type applied by hand falls back to the current one
  const secrets = context.secrets ?? currentSecrets();
  if (secrets.known().length === 0) return false;
  return contents.some(
    (content) => content !== undefined && secrets.contains(Buffer.from(content).toString("utf8")),
  );
}

/** Removes every backup of `file` under the state dir: one command on a remote host. */
async function removeBackups(host: Host, file: string, context: ApplyContext): Promise<void> {
  const dir = path.join(context.stateDir, "backup", path.dirname(file));
  const base = path.basename(file);
  if (!hasFs(host)) {
    await host.exec(["sh", "-c", removeBackupsScript, "sh", dir, base]);
    return;
  }
  for (const name of await list(host, dir)) {
    if (isBackupOf(name, base)) await remove(host, path.join(dir, name));
  }
}

function isBackupOf(name: string, base: string): boolean {
  return name.startsWith(`${base}.`) && /^\d{8}T\d{6}$/.test(name.slice(base.length + 1));
}

// $1 dir, $2 file name
const removeBackupsScript = `cd -- "$1" 2>/dev/null || exit 0
ls -1A | while IFS= read -r f; do
  case "$f" in "$2".[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]) rm -f -- "$f" ;; esac
done`;

/** Keeps the replaced content under <stateDir>/backup/<path>.<time>, the newest `keep` only. */
async function backup(host: Host, file: string, content: Uint8Array, keep: number, context: ApplyContext) {
  const dir = path.join(context.stateDir, "backup", path.dirname(file));
  const base = path.basename(file);
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "");
  // a remote host does it in one command: over a slow link every command is a round trip or more
  if (!hasFs(host)) {
    const result = await host.exec(["sh", "-c", backupScript, "sh", dir, base, stamp, String(keep)], {
      input: content,
    });
    if (result.exitCode !== 0) {
      throw new GalleyError(
        "APPLY_FAILED",
        `cannot keep a backup of ${file} in ${dir}: ${result.stderr.trim()}`,
        {
          hint: "check that the state dir can be written, or set backup: false on the resource",
        },
      );
    }
    return;
  }
  await mkdir(host, dir, { recursive: true, mode: 0o700 });
  await host.writeFile(path.join(dir, `${base}.${stamp}`), content, { mode: 0o600 });
  const old = (await list(host, dir))
    .filter((name) => isBackupOf(name, base))
    .sort()
    .reverse()
    .slice(keep);
  for (const name of old) await remove(host, path.join(dir, name));
}

// $1 dir, $2 file name, $3 time stamp, $4 how many to keep: the content comes on stdin
const backupScript = `set -e
umask 077
mkdir -p -- "$1"
chmod 700 -- "$1"
cat > "$1/.$2.galley-tmp-$3"
mv -f -- "$1/.$2.galley-tmp-$3" "$1/$2.$3"
cd -- "$1"
ls -1A | while IFS= read -r f; do
  case "$f" in "$2".[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]) printf '%s\\n' "$f" ;; esac
done | sort -r | tail -n +"$(($4 + 1))" | while IFS= read -r f; do rm -f -- "$f"; done`;

/** The properties every file-like type shares: mode, owner, group and backups of replaced content. */
export const fileProperties = {
  mode: v.optional(modeSchema()),
  owner: v.optional(described(v.string(), "user that owns the file")),
  group: v.optional(described(v.string(), "group that owns the file")),
  backup: v.optional(
    described(
      v.union([v.pipe(v.number(), v.integer(), v.minValue(0)), v.literal(false)]),
      "how many backups of replaced content to keep under the state dir (false or 0: none)",
    ),
    5,
  ),
};

/** What a managed path needs first: its parent directory, its owner and its group. */
export function pathRequires(props: {
  path: string;
  owner?: string | undefined;
  group?: string | undefined;
}): AutoRequire[] {
  return [
    { path: props.path },
    ...(props.owner ? [{ user: props.owner }] : []),
    ...(props.group ? [{ group: props.group }] : []),
  ];
}
