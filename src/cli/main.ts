import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { errorCodes, exitCodes, GalleyError, isGalleyError } from "../core/errors.ts";
import { blameRecipe } from "../core/recipe-scope.ts";
import { processSecrets, Secrets, withSecrets } from "../core/secrets.ts";
import { type Command, commands } from "./commands.ts";

/**
 * The command-line entry point: parses, runs one command, and turns every known error into
 * `error[CODE]: message` plus a hint and an exit code. Returns the exit code. The command is a
 * run: it owns a secret registry, and everything it prints is scrubbed with it.
 */
export async function main(argv: string[]): Promise<number> {
  const secrets = new Secrets(processSecrets);
  return withSecrets(secrets, () => command(argv, secrets));
}

async function command(argv: string[], secrets: Secrets): Promise<number> {
  const [name, ...rest] = argv;
  const json = rest.includes("--json");
  const release = catchLateFailures(json, secrets);
  try {
    if (name === undefined || name === "help" || name === "--help" || name === "-h") {
      process.stdout.write(await usage());
      return exitCodes.ok;
    }
    if (name === "--version" || name === "version") {
      const { default: pkg } = await import("../../package.json", { with: { type: "json" } });
      process.stdout.write(
        json ? `${JSON.stringify({ version: pkg.version })}\n` : `galley ${pkg.version}\n`,
      );
      return exitCodes.ok;
    }
    const load = Object.hasOwn(commands, name) ? commands[name] : undefined;
    if (!load) {
      throw new GalleyError("USAGE", `unknown command "${name}"`, {
        hint: `commands: ${Object.keys(commands).join(", ")}`,
      });
    }
    const command = await load();
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: rest,
        options: command.options as ParseArgsOptionsConfig,
        allowPositionals: true,
        strict: true,
      });
    } catch (error) {
      throw new GalleyError("USAGE", `galley ${name}: ${(error as Error).message}`, {
        hint: `see: galley ${name} --help`,
      });
    }
    if (parsed.values.help) {
      process.stdout.write(commandUsage(name, command));
      return exitCodes.ok;
    }
    return await command.run(parsed.values as never, parsed.positionals);
  } catch (error) {
    return report(error, json, secrets);
  } finally {
    release();
  }
}

/**
 * An error nobody caught (a recipe's timer that throws, a promise nobody awaited) ends the command
 * as one coded error, RECIPE_FAILED naming the recipe when it came from one, not as Node's crash
 * with a stack trace and exit 1.
 */
function catchLateFailures(json: boolean, secrets: Secrets): () => void {
  let running = true;
  const fail = (error: unknown) => {
    process.exit(report(blameRecipe(error) ?? error, json, secrets));
  };
  // nothing left to run and the command not done: Node would exit 13 with only a warning
  const idle = () =>
    setImmediate(() => {
      if (running) fail(new Error("the command waits on a promise that nothing is left to settle"));
    });
  process.on("uncaughtException", fail);
  process.on("unhandledRejection", fail);
  process.on("beforeExit", idle);
  return () => {
    running = false;
    process.off("uncaughtException", fail);
    process.off("unhandledRejection", fail);
    process.off("beforeExit", idle);
  };
}

function report(error: unknown, json: boolean, secrets: Secrets): number {
  if (isGalleyError(error)) {
    // an interruption exits 130 or 143 by its signal
    const exit = (error as { exitCode?: number }).exitCode ?? errorCodes[error.code] ?? exitCodes.userError;
    // a message may quote a value that came from an encrypted attribute file
    const message = secrets.scrub(error.message);
    const hint = error.hint === undefined ? undefined : secrets.scrub(error.hint);
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ status: "error", error: { code: error.code, message, hint } })}\n`,
      );
    } else {
      process.stderr.write(`error[${error.code}]: ${message}\n`);
      if (hint) process.stderr.write(`hint: ${hint}\n`);
    }
    return exit;
  }
  // not a user error: a bug, so the stack trace helps whoever fixes it
  process.stderr.write(
    `internal error: ${secrets.scrub(error instanceof Error ? (error.stack ?? error.message) : String(error))}\n`,
  );
  process.stderr.write("hint: this is a bug in Galley; please report it with the command you ran\n");
  return exitCodes.internalError;
}

async function usage(): Promise<string> {
  const lines = [
    "Galley: configuration management and fleet orchestration",
    "",
    "usage: galley <command> [options]",
    "",
    "commands:",
  ];
  for (const [name, load] of Object.entries(commands))
    lines.push(
      `  ${name.padEnd(Math.max(...Object.keys(commands).map((n) => n.length)))} ${(await load()).summary}`,
    );
  lines.push("", "Every command takes --json and --help. Docs: docs/ in the repository.", "");
  return lines.join("\n");
}

function commandUsage(name: string, command: Command): string {
  const lines = [`usage: galley ${name} ${command.usage}`, "", command.summary, "", "options:"];
  for (const [option, spec] of Object.entries(command.options)) {
    const short = typeof spec.short === "string" ? `-${spec.short}, ` : "";
    const flag = `${short}--${option}${spec.type === "string" ? " VALUE" : ""}`;
    lines.push(`  ${flag.padEnd(24)} ${(spec as { description?: string }).description ?? ""}`);
  }
  return `${lines.join("\n")}\n`;
}
