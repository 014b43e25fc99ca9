import { GalleyError } from "../core/errors.ts";
import * as path from "node:path";
import { type ExecOptions, type ExecResult, type Host, hasFs } from "../core/host.ts";
import { tempPath } from "./temp-files.ts";

/**
 * File-system operations on any host: the host's own ability when it has one (local), else the
 * same effect through `exec` (any POSIX host).
 */
export async function mkdir(
  host: Host,
  path: string,
  options: { mode?: number; owner?: string; group?: string; recursive?: boolean },
): Promise<void> {
  if (hasFs(host)) return host.mkdir(path, options);
  // one command, not three: over a slow link each costs a round trip
  const owner = ownerSpec(options.owner, options.group);
  const steps = [`mkdir ${options.recursive ? "-p " : ""}-- "$1"`];
  if (options.mode !== undefined) steps.push('chmod "$2" -- "$1"');
  if (owner !== undefined) steps.push('chown -h "$3" -- "$1"');
  await runSteps(host, steps, [path, options.mode?.toString(8) ?? "", owner ?? ""], `mkdir ${path}`);
}

export async function remove(host: Host, path: string, options: { recursive?: boolean } = {}): Promise<void> {
  if (hasFs(host)) return host.remove(path, options);
  await run(host, ["rm", options.recursive ? "-rf" : "-f", "--", path]);
}

/** Points `path` at `target`, replacing whatever link is there in one rename. */
export async function symlink(host: Host, target: string, path: string): Promise<void> {
  if (hasFs(host)) return host.symlink(target, path);
  const temp = tempPath(path);
  await runSteps(host, ['ln -s -- "$1" "$2"', 'mv -T -- "$2" "$3"'], [target, temp, path], `symlink ${path}`);
}

export async function chmod(host: Host, path: string, mode: number): Promise<void> {
  if (hasFs(host)) return host.chmod(path, mode);
  await run(host, ["chmod", mode.toString(8), "--", path]);
}

export async function chown(host: Host, path: string, owner: string | undefined, group: string | undefined) {
  const spec = ownerSpec(owner, group);
  if (spec === undefined) return;
  if (hasFs(host)) return host.chown(path, owner, group);
  await run(host, ["chown", "-h", spec, "--", path]);
}

/** chown's `owner:group` argument, or undefined when neither is managed. */
function ownerSpec(owner: string | undefined, group: string | undefined): string | undefined {
  if (owner === undefined && group === undefined) return undefined;
  return `${owner ?? ""}${group === undefined ? "" : `:${group}`}`;
}

/**
 * Runs shell steps joined by `&&` as one command, the paths as positional arguments (never
 * spliced into the script); a failure names `what` and the step's own message.
 */
async function runSteps(host: Host, steps: string[], args: string[], what: string): Promise<void> {
  await run(host, ["sh", "-c", steps.join(" && "), "sh", ...args], {}, what);
}

export async function rename(host: Host, from: string, to: string): Promise<void> {
  if (hasFs(host)) return host.rename(from, to);
  await run(host, ["mv", "-T", "--", from, to]);
}

/**
 * Runs a command and throws an APPLY_FAILED error carrying its output when it exits non-zero.
 * Resource types use it for the commands whose failure is the resource's failure.
 */
export async function run(
  host: Host,
  argv: readonly string[],
  options: ExecOptions = {},
  /** what a failure calls the command (default: its argv) */
  what = argv.join(" "),
): Promise<ExecResult> {
  const result = await host.exec(argv, options);
  if (result.exitCode !== 0) {
    const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-5).join("\n");
    throw new GalleyError(
      "EXEC_FAILED",
      `${what} exited ${result.timedOut ? "on timeout" : result.exitCode}${output ? `: ${output}` : ""}`,
    );
  }
  return result;
}

/** The names in a directory, or an empty list when it does not exist. */
export async function list(host: Host, path: string): Promise<string[]> {
  if (hasFs(host)) return host.list(path);
  const result = await host.exec(["ls", "-1A", "--", path]);
  return result.exitCode === 0 ? result.stdout.split("\n").filter(Boolean) : [];
}

/**
 * Writes a small state file so that it survives a kill and a power loss: temp file, fsync, rename,
 * fsync of the directory (created 0700 when missing). Over SSH it is one command (one round trip).
 */
export async function writeDurable(host: Host, file: string, data: string, mode = 0o600): Promise<void> {
  const dir = path.posix.dirname(file);
  if (hasFs(host)) {
    await host.mkdir(dir, { recursive: true, mode: 0o700 });
    return host.writeFile(file, data, { mode, durable: true });
  }
  // sync FILE and sync DIR fsync just those (coreutils 8.24+); an older sync syncs everything
  const script = `umask 077
[ -d "$3" ] || mkdir -p -m 700 -- "$3" || exit 1
cat > "$1" && chmod "$4" "$1" && { sync -- "$1" 2>/dev/null || sync; } && mv -f -- "$1" "$2" && { sync -- "$3" 2>/dev/null || sync; } && exit 0
rc=$?; rm -f -- "$1"; exit $rc`;
  await run(host, ["sh", "-c", script, "sh", tempPath(file), file, dir, mode.toString(8)], { input: data });
}
