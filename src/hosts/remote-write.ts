import * as path from "node:path";
import type { SFTPWrapper } from "ssh2";
import { GalleyError } from "../core/errors.ts";
import type { WriteOptions } from "../core/host.ts";
import { becomeMarker, type RemoteIdentity, shellQuote } from "./remote-command.ts";
import type { RawResult } from "./ssh.ts";
import { randomId, tempPath } from "../core/temp-files.ts";

/** What writing a file needs from the SSH host. */
export interface RemoteFiles {
  readonly name: string;
  readonly identity: RemoteIdentity;
  sftp(): Promise<SFTPWrapper>;
  stagingDir(): Promise<string>;
  runRaw(command: string, input?: string | Uint8Array): Promise<RawResult>;
}

/**
 * Writes a file atomically: a temp file in the target's directory gets the content, mode and
 * owner, then is renamed over the target. As the login user, SFTP does it all; with become, the
 * content goes by SFTP to a private upload directory and one sudo command installs it.
 */
export async function writeRemoteFile(
  host: RemoteFiles,
  file: string,
  data: Uint8Array,
  options: WriteOptions,
): Promise<void> {
  const temp = tempPath(file);
  const mode = options.mode ?? 0o644;
  const owner = ownerSpec(options);
  const sftp = await host.sftp();
  const fail = (reason: string) =>
    new GalleyError("APPLY_FAILED", `cannot write ${file} on ${host.name}: ${reason}`, {
      hint: "check that the directory exists and that the user Galley runs as may write there",
    });
  if (host.identity.become !== undefined) {
    const staged = path.posix.join(await host.stagingDir(), randomId());
    await upload(sftp, staged, data, 0o600).catch(async (error: Error) => {
      await unlink(sftp, staged);
      throw fail(`upload to ${staged} failed: ${error.message}`);
    });
    const script = [
      `printf "\\001" >&2`,
      "set -C",
      `cat > "$1" && { sync "$1" 2>/dev/null || :; } && { [ -z "$4" ] || chown -- "$4" "$1"; } && chmod "$3" "$1" && mv -f -T -- "$1" "$2" && exit 0`,
      `rc=$?; rm -f -- "$1"; exit $rc`,
    ].join("\n");
    const args = [temp, file, mode.toString(8), owner ?? ""].map(shellQuote).join(" ");
    const command = `sudo -n -u ${shellQuote(host.identity.become)} -- sh -c ${shellQuote(script)} sh ${args} < ${shellQuote(staged)}; rc=$?; rm -f -- ${shellQuote(staged)}; exit $rc`;
    const result = await host.runRaw(command);
    const stderr = result.stderr.toString("utf8");
    if (!stderr.startsWith(becomeMarker)) {
      throw new GalleyError(
        "BECOME_FAILED",
        `sudo refused to write ${file} as ${host.identity.become} on ${host.name}: ${stderr.trim() || `exit ${result.exitCode}`}`,
        {
          hint: "Galley runs sudo -n (it never types a password): give the login user passwordless sudo (NOPASSWD)",
        },
      );
    }
    if (result.exitCode !== 0) throw fail(stderr.slice(1).trim() || `exit ${result.exitCode}`);
    return;
  }
  try {
    await upload(sftp, temp, data, mode);
  } catch (error) {
    await unlink(sftp, temp);
    throw fail((error as Error).message);
  }
  if (owner === undefined) {
    const renamed = await call((cb) => sftp.ext_openssh_rename(temp, file, cb)).catch(
      (error: Error) => error,
    );
    if (!(renamed instanceof Error)) return;
    await unlink(sftp, temp);
    throw fail(renamed.message);
  }
  // chown before chmod: a chown clears the setuid and setgid bits
  const t = shellQuote(temp);
  const command = `chown -- ${shellQuote(owner)} ${t} && chmod ${mode.toString(8)} ${t} && mv -f -T -- ${t} ${shellQuote(file)} || { rc=$?; rm -f -- ${t}; exit $rc; }`;
  const result = await host.runRaw(command);
  if (result.exitCode !== 0) throw fail(result.stderr.toString("utf8").trim() || `exit ${result.exitCode}`);
}

/**
 * Creates `file` (never over an existing one), writes every chunk, sets the mode, syncs and
 * closes: all but the open are pipelined, so the upload costs two round trips.
 */
async function upload(sftp: SFTPWrapper, file: string, data: Uint8Array, mode: number): Promise<void> {
  const handle = await call<Buffer>((cb) => sftp.open(file, "wx", { mode }, cb));
  const buffer = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const steps: Promise<unknown>[] = [];
  const chunk = 32 * 1024;
  for (let offset = 0; offset < buffer.length; offset += chunk) {
    const length = Math.min(chunk, buffer.length - offset);
    steps.push(call((cb) => sftp.write(handle, buffer, offset, length, offset, cb)));
  }
  // the server's umask applied at open: set the mode exactly
  steps.push(call((cb) => sftp.fchmod(handle, mode, cb)));
  steps.push(call((cb) => sftp.ext_openssh_fsync(handle, cb)).catch(() => {}));
  // the server answers in order: the close goes right behind the writes
  steps.push(call((cb) => sftp.close(handle, cb)));
  const written = await Promise.allSettled(steps);
  const failed = written.find((step) => step.status === "rejected");
  if (failed) throw (failed as PromiseRejectedResult).reason;
}

function unlink(sftp: SFTPWrapper, file: string): Promise<void> {
  return new Promise((resolve) => sftp.unlink(file, () => resolve()));
}

function call<T = void>(
  start: (callback: (error: Error | undefined | null, value?: T) => void) => void,
): Promise<T> {
  return new Promise((resolve, reject) =>
    start((error, value) => (error ? reject(error) : resolve(value as T))),
  );
}

function ownerSpec(options: WriteOptions): string | undefined {
  if (options.owner === undefined && options.group === undefined) return undefined;
  return `${options.owner ?? ""}${options.group === undefined ? "" : `:${options.group}`}`;
}
