import { GalleyError } from "../core/errors.ts";
import type { AgentInstallValues } from "./agent-install.ts";
import { agentTokenOptions, type AgentTokenValues } from "./agent-token.ts";

// `galley agent SUBCOMMAND`: its options and its table of subcommands. `token` (mint an enrollment
// token) is the CLI's; `enroll` and `run` live in src/agent/commands.ts and `bin/galley.js` adds
// them here (src/cli may not import src/agent: siblings); `install` joins the table too.

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
    description:
      "(enroll, run) the agent's config file (default /etc/galley/agent.json; its key: agent.key beside it)",
  },
  "state-dir": {
    type: "string",
    description: "(run) the agent's state: bundles, queued reports (default /var/lib/galley/agent)",
  },
  once: {
    type: "boolean",
    default: false,
    description: "(run) one drift run now, deliver the queued reports, then exit",
  },
  ...agentTokenOptions,
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

/** One subcommand of `galley agent`: the parsed values of the table above, and the positionals after it. */
// biome-ignore lint/suspicious/noExplicitAny: each subcommand reads its own values of the shared table
export type AgentSubcommand = (values: any, positionals: string[]) => Promise<number>;

/** The subcommands of `galley agent`, by name (bin/galley.js adds enroll and run). */
export const agentSubcommands: Record<string, AgentSubcommand> = {
  token: async (values: AgentTokenValues, positionals) =>
    (await import("./agent-token.ts")).agentToken(values, positionals),
  install: async (values: AgentInstallValues, positionals) =>
    (await import("./agent-install.ts")).agentInstall(values, positionals),
};

/** `galley agent enroll|run|token|install`. */
export const agentCommand = {
  summary: "enroll this host as an agent of a galley server and run the agent; mint enrollment tokens",
  usage: [
    "enroll --server URL --token TOKEN [--new-key] [--config FILE] [--json]",
    "       galley agent run [--config FILE] [--state-dir DIR] [--once] [--json]",
    "       galley agent token --stack STACK INSTANCE [--ttl 24h] [--kitchen DIR] [--data DIR] [--json]",
    "       galley agent install --stack STACK INSTANCE --server URL [--token TOKEN] [--data DIR] [--json]",
  ].join("\n"),
  options,
  async run(values: Record<string, unknown>, positionals: string[]): Promise<number> {
    const [name, ...rest] = positionals;
    const subcommand = name === undefined ? undefined : agentSubcommands[name];
    if (!subcommand)
      throw new GalleyError(
        "USAGE",
        name === undefined ? "galley agent: which subcommand?" : `galley agent: unknown subcommand "${name}"`,
        { hint: `subcommands: ${Object.keys(agentSubcommands).join(", ")}; see: galley agent --help` },
      );
    return subcommand(values, rest);
  },
};
