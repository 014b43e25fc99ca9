import type { ExecOptions } from "../core/host.ts";

/**
 * The one shell command line an SSH `exec` sends for an argv: sshd hands it to the login shell as
 * one argument, so everything is quoted exactly once and the argv travels as "$@".
 */

/** Who runs commands on the far side: the login user, and the become user when sudo is used. */
export interface RemoteIdentity {
  login: string;
  /** set when every command runs through `sudo -n -u <become>` */
  become?: string | undefined;
}

/** Written to stderr first thing after sudo let us in: its absence means sudo refused. */
export const becomeMarker = "\u0001";

/** Quotes one word for a POSIX shell; plain words stay as they are. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The user commands run as, before ExecOptions.user. */
export function effectiveUser(identity: RemoteIdentity): string {
  return identity.become ?? identity.login;
}

/**
 * The command line for `argv` with cwd, env, user and timeout applied, wrapped in sudo when the
 * identity has a become user.
 *
 * @example commandLine(["ls", "-l"], { cwd: "/tmp" }, { login: "root" }) // sh -c 'cd … && exec "$@"' sh ls -l
 */
export function commandLine(
  argv: readonly string[],
  options: Omit<ExecOptions, "input">,
  identity: RemoteIdentity,
): string {
  const words = argv.map(shellQuote).join(" ");
  const runner = runnerWords(options, identity);
  const needsShell = options.cwd !== undefined || identity.become !== undefined;
  if (!needsShell) return runner.length === 0 ? words : `${runner.join(" ")} ${words}`;
  const steps: string[] = [];
  if (identity.become !== undefined) steps.push(`printf "\\001" >&2`);
  if (options.cwd !== undefined) {
    // like a local spawn in a missing directory: the command was not found there
    steps.push(`cd -- ${shellQuote(options.cwd)} || exit 127`);
  }
  steps.push(["exec", ...runner, '"$@"'].join(" "));
  const shell = `sh -c ${shellQuote(steps.join("; "))} sh ${words}`;
  if (identity.become === undefined) return shell;
  return `sudo -n -u ${shellQuote(identity.become)} -- ${shell}`;
}

/** timeout, user switch and env, in that order: the timeout ends whatever the switch started. */
function runnerWords(options: Omit<ExecOptions, "input">, identity: RemoteIdentity): string[] {
  const words: string[] = [];
  if (options.timeoutMs !== undefined) {
    // KILL the process group timeout leads, as a local run kills the command's process group
    words.push("timeout", "-s", "KILL", `${Math.max(options.timeoutMs, 1) / 1000}s`);
  }
  const current = effectiveUser(identity);
  if (options.user !== undefined && options.user !== current) {
    const user = shellQuote(options.user);
    words.push(...(current === "root" ? ["runuser", "-u", user, "--"] : ["sudo", "-n", "-u", user, "--"]));
  }
  const env = Object.entries(options.env ?? {});
  if (env.length > 0) words.push("env", ...env.map(([key, value]) => shellQuote(`${key}=${value}`)));
  return words;
}
