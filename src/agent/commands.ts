import { exitCodes, GalleyError } from "../core/errors.ts";
import { defaultConfigFile, defaultStateDir, keyFileOf, readAgentConfig, readAgentKey } from "./config.ts";

// `galley agent enroll` and `galley agent run`. They live in the agent's folder because src/cli
// may not import src/agent (siblings): the entry point, bin/galley.js, adds them to the table of
// `galley agent` (src/cli/agent.ts), which holds their options.

/** The values enroll and run read (parsed by `galley agent`'s options table). */
export interface AgentValues {
  server?: string | undefined;
  token?: string | undefined;
  "new-key"?: boolean | undefined;
  config?: string | undefined;
  "state-dir"?: string | undefined;
  once?: boolean | undefined;
  json?: boolean | undefined;
}

/** `galley agent enroll --server URL --token T [--new-key] [--config F] [--json]`. */
export async function enroll(values: AgentValues): Promise<number> {
  if (!values.server || !values.token)
    throw new GalleyError("USAGE", "galley agent enroll needs --server URL and --token TOKEN", {
      hint: "on the server: galley agent token --stack STACK INSTANCE prints the token",
    });
  const { enrollAgent } = await import("./enroll.ts");
  const configFile = values.config ?? defaultConfigFile;
  const enrolled = await enrollAgent({
    server: values.server,
    token: values.token,
    configFile,
    newKey: values["new-key"] ?? false,
  });
  const { ca: _ca, ...shown } = enrolled;
  if (values.json) print(`${JSON.stringify({ status: "enrolled", ...shown })}\n`);
  else {
    print(
      `enrolled ${enrolled.stack}/${enrolled.instance} with ${enrolled.server} (generation ${enrolled.generation})\n`,
    );
    print(`config ${enrolled.configFile}, key ${enrolled.keyFile}; next: galley agent run\n`);
  }
  return exitCodes.ok;
}

/** `galley agent run [--config F] [--state-dir D] [--once]`: until SIGTERM or SIGINT (then exit 0). */
export async function run(values: AgentValues): Promise<number> {
  const configFile = values.config ?? defaultConfigFile;
  const config = await readAgentConfig(configFile);
  const keyFile = config.key ?? keyFileOf(configFile);
  const key = await readAgentKey(keyFile);
  if (!key)
    throw new GalleyError("AGENT_CONFIG_INVALID", `this host has no agent key: no ${keyFile}`, {
      hint: "enroll again: galley agent enroll --server URL --token TOKEN",
    });
  const { Agent } = await import("./agent.ts");
  const agent = new Agent({ config, key, stateDir: values["state-dir"] ?? defaultStateDir });
  if (values.once) {
    const delivered = await agent.runOnce();
    const queued = (await agent.queue.pending()).length;
    if (values.json) print(`${JSON.stringify({ status: delivered ? "ok" : "queued", queued })}\n`);
    else if (!delivered) print(`${queued} report(s) stay queued: the server was not reached\n`);
    return exitCodes.ok;
  }
  await agent.start();
  // SIGTERM/SIGINT: the running job stops between resources, the socket closes, exit 0
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      process.stderr.write(`galley agent: ${signal}: stopping\n`);
      agent.stop().then(resolve, resolve);
    };
    const onTerm = () => stop("SIGTERM");
    const onInt = () => stop("SIGINT");
    process.on("SIGTERM", onTerm);
    process.on("SIGINT", onInt);
  });
  return exitCodes.ok;
}

function print(text: string): void {
  process.stdout.write(text);
}
