import * as path from "node:path";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { ExecResult } from "../core/host.ts";
import { defineResourceType, described, optional, pathSchema } from "../core/resource.ts";

const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

const schema = v.pipe(
  v.strictObject({
    command: described(
      v.union([v.pipe(v.string(), v.minLength(1)), v.pipe(v.array(v.string()), v.minLength(1))]),
      "what to run: a string runs with `sh -c`, a list runs that program with those arguments directly (defaults to the resource name)",
    ),
    cwd: v.optional(pathSchema("directory to run the command in")),
    env: v.optional(
      described(v.record(v.string(), v.string()), "environment variables added to Galley's own"),
    ),
    user: v.optional(
      described(v.string(), "run the command as this user (Galley must run as root or have sudo)"),
    ),
    timeout: v.optional(
      described(
        v.pipe(v.number(), v.gtValue(0)),
        "seconds before the command and everything it started are killed and the resource fails",
      ),
      3600,
    ),
    returns: v.optional(
      described(
        v.union([int(0, 255), v.pipe(v.array(int(0, 255)), v.minLength(1))]),
        "the exit code, or list of exit codes, that mean success",
      ),
      0,
    ),
    creates: v.optional(
      described(
        v.pipe(v.string(), v.minLength(1)),
        "a path (absolute, or relative to cwd): when it exists the command is not run; makes the run idempotent",
      ),
    ),
    umask: v.optional(
      v.pipe(
        v.union([int(0, 0o777), v.pipe(v.string(), v.regex(/^0?[0-7]{3}$/, 'an octal umask like "022"'))]),
        v.description(
          'file-mode creation mask for the command, as a number (0o022) or an octal string ("022")',
        ),
        v.transform((value) => (typeof value === "number" ? value : Number.parseInt(value, 8))),
      ),
    ),
  }),
  v.forward(
    v.partialCheck(
      [["creates"], ["cwd"]],
      (props) => props.creates === undefined || props.creates.startsWith("/") || props.cwd !== undefined,
      "a relative `creates` needs `cwd`; or give an absolute path",
    ),
    ["creates"],
  ),
);

type Props = v.InferOutput<typeof schema>;

/** What read finds: whether the `creates` path is already there. */
export interface ExecuteState {
  created: boolean;
}

/** A command run on the host; with `creates` it runs only until that path exists. */
export const execute = defineResourceType<typeof schema, ExecuteState>({
  type: "execute",
  description:
    "Runs a command (a shell string or an argument list) with optional cwd, env, user, umask and timeout. It runs at every converge unless `creates` names a path that exists, or a guard (onlyIf/notIf) says no. Exit codes other than `returns` fail the resource.",
  actions: ["run"],
  imperative: ["run"],
  schema,
  nameProperty: "command",
  broadEffects: true,
  sharedKeys: true,

  key: (props) => displayCommand(props.command),

  autoRequires: (props) => [
    ...(props.cwd ? [{ path: props.cwd }] : []),
    ...(props.user ? [{ user: props.user }] : []),
  ],

  async read(host, props) {
    const created =
      props.creates === undefined ? false : (await host.stat(createsPath(props)!)) !== undefined;
    return { created };
  },

  diff(current, desired) {
    if (current?.created) return [];
    return [{ property: "command", to: displayCommand(desired.command) }];
  },

  async apply(host, desired) {
    const result = await host.exec(wrap(desired), {
      ...optional("cwd", desired.cwd),
      ...optional("env", desired.env),
      ...optional("user", desired.user),
      // a backstop only: coreutils `timeout` kills the whole process group first
      timeoutMs: desired.timeout * 1000 + 10_000,
    });
    const display = displayCommand(desired.command);
    if (timedOut(result, desired.timeout)) {
      throw new GalleyError(
        "EXEC_FAILED",
        `execute[${display}] timed out after ${desired.timeout} s${tail(result)}`,
        {
          hint: "raise `timeout` (seconds) or find out why the command hangs",
        },
      );
    }
    const allowed = Array.isArray(desired.returns) ? desired.returns : [desired.returns];
    if (!allowed.includes(result.exitCode)) {
      throw new GalleyError(
        "EXEC_FAILED",
        `execute[${display}] exited ${result.exitCode} (expected ${allowed.join(" or ")})${tail(result)}`,
        { hint: "fix the command, or list this exit code in `returns` if it means success" },
      );
    }
  },
});

/** The command as one line for diffs, reports and errors: argv items are quoted when needed. */
export function displayCommand(command: string | readonly string[]): string {
  if (typeof command === "string") return command;
  return command
    .map((arg) => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`))
    .join(" ");
}

function createsPath(props: Props): string | undefined {
  if (props.creates === undefined) return undefined;
  return path.isAbsolute(props.creates) ? props.creates : path.join(props.cwd ?? "/", props.creates);
}

/** argv run on the host: `timeout` kills the command's whole process group; umask through sh. */
function wrap(props: Props): string[] {
  let argv = typeof props.command === "string" ? ["sh", "-c", props.command] : [...props.command];
  if (props.umask !== undefined) {
    const mask = props.umask.toString(8).padStart(3, "0");
    argv = ["sh", "-c", 'umask "$1" && shift && exec "$@"', "sh", mask, ...argv];
  }
  return ["timeout", "--kill-after=5s", `${props.timeout}s`, ...argv];
}

/** coreutils `timeout` exits 124 when it stopped the command; 137 when it had to SIGKILL it. */
function timedOut(result: ExecResult, seconds: number): boolean {
  if (result.timedOut) return true;
  return (result.exitCode === 124 || result.exitCode === 137) && result.durationMs >= seconds * 1000;
}

/** The last lines of stderr, or of stdout when stderr is empty, for error messages. */
function tail(result: ExecResult): string {
  const output = result.stderr.trim() || result.stdout.trim();
  return output ? `:\n${output.split("\n").slice(-10).join("\n")}` : "";
}
