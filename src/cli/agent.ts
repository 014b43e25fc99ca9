import { exitCodes, GalleyError } from "../core/errors.ts";
import { Agent } from "../agent/agent.ts";
import {
  defaultConfigFile,
  defaultStateDir,
  keyFileOf,
  readAgentConfig,
  readAgentKey,
} from "../agent/config.ts";
import { enrollAgent } from "../agent/enroll.ts";
import { write, writeJson } from "./output.ts";

// `galley agent enroll|run`: a host becomes an agent of a galley server, then runs as one.
// (`galley agent token` and `galley agent install` join the table below.)

const options = {
  server: { type: "string", description: "(enroll) the server's URL: https://HOST:PORT" },
  token: { type: "string", description: "(enroll) the one-time token `galley agent token` printed" },
  "new-key": {
    type: "boolean",
    default: false,
    description: "(enroll) make a new key even when this host has one",
  },
  config: {
    type: "string",
    description: `the agent's config file (default ${defaultConfigFile}; its key: agent.key beside it)`,
  },
  "state-dir": {
    type: "string",
    description: `(run) the agent's state: bundles, queued reports (default ${defaultStateDir})`,
  },
  once: {
    type: "boolean",
    default: false,
    description: "(run) one drift run now, deliver the queued reports, then exit",
  },
  stack: {
    type: "string",
    description: "(install) the instance's stack: a name (stacks/NAME.yaml) or a file",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  stack?: string;
  server?: string;
  token?: string;
  "new-key": boolean;
  config?: string;
  "state-dir"?: string;
  once: boolean;
  json: boolean;
}

type Subcommand = (values: Values, positionals: string[]) => Promise<number>;

const subcommands: Record<string, Subcommand> = {
  enroll,
  run,
  install: async (values, positionals) =>
    (await import("./agent-install.ts")).agentInstall(values, positionals),
};

/** `galley agent enroll|run`. */
export const agentCommand = {
  summary: "enroll this host as an agent of a galley server, or run the agent",
  usage:
    "enroll --server URL --token TOKEN [--new-key] [--config FILE] [--json]\n       galley agent run [--config FILE] [--state-dir DIR] [--once]\n       galley agent install --stack STACK INSTANCE --server URL --token TOKEN [--json]",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const [name, ...rest] = positionals;
    const subcommand = name === undefined ? undefined : subcommands[name];
    if (!subcommand)
      throw new GalleyError(
        "USAGE",
        name === undefined ? "galley agent: which subcommand?" : `galley agent: unknown subcommand "${name}"`,
        { hint: `subcommands: ${Object.keys(subcommands).join(", ")}; see: galley agent --help` },
      );
    return subcommand(values, rest);
  },
};

async function enroll(values: Values): Promise<number> {
  if (!values.server || !values.token)
    throw new GalleyError("USAGE", "galley agent enroll needs --server URL and --token TOKEN", {
      hint: "on the server: galley agent token STACK INSTANCE prints the token",
    });
  const configFile = values.config ?? defaultConfigFile;
  const enrolled = await enrollAgent({
    server: values.server,
    token: values.token,
    configFile,
    newKey: values["new-key"],
  });
  const { ca: _ca, ...shown } = enrolled;
  if (values.json) writeJson({ status: "enrolled", ...shown });
  else {
    write(
      `enrolled ${enrolled.stack}/${enrolled.instance} with ${enrolled.server} (generation ${enrolled.generation})\n`,
    );
    write(`config ${enrolled.configFile}, key ${enrolled.keyFile}; next: galley agent run\n`);
  }
  return exitCodes.ok;
}

async function run(values: Values): Promise<number> {
  const configFile = values.config ?? defaultConfigFile;
  const config = await readAgentConfig(configFile);
  const keyFile = config.key ?? keyFileOf(configFile);
  const key = await readAgentKey(keyFile);
  if (!key)
    throw new GalleyError("AGENT_CONFIG_INVALID", `this host has no agent key: no ${keyFile}`, {
      hint: "enroll again: galley agent enroll --server URL --token TOKEN",
    });
  const agent = new Agent({ config, key, stateDir: values["state-dir"] ?? defaultStateDir });
  if (values.once) {
    const delivered = await agent.runOnce();
    if (values.json)
      writeJson({ status: delivered ? "ok" : "queued", queued: (await agent.queue.pending()).length });
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
