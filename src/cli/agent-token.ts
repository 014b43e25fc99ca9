import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { exitCodes, GalleyError } from "../core/errors.ts";
import { certificateFingerprint, mintEnrollment } from "../fleet/agent-enrollment.ts";
import { openSqliteStore, storeFile } from "../store/sqlite.ts";
import { write, writeJson } from "./output.ts";

// `galley agent token --stack S INSTANCE`: a one-time enrollment token for an instance's agent,
// minted on the kitchen's store directly (the server need not run), printed once.

/** The options `galley agent token` adds to `galley agent`'s table. */
export const agentTokenOptions = {
  stack: { type: "string", description: "(token) the stack of the instance" },
  kitchen: { type: "string", description: "(token) the kitchen the server serves (default: this folder)" },
  data: {
    type: "string",
    description: "(token) the server's data dir (default KITCHEN/.galley/server): its CA",
  },
  ttl: { type: "string", description: "(token) how long the token stays valid: 30m, 24h, 7d (default 24h)" },
} as const;

/** The parsed values `galley agent token` reads. */
export interface AgentTokenValues {
  stack?: string | undefined;
  kitchen?: string | undefined;
  data?: string | undefined;
  ttl?: string | undefined;
  json?: boolean | undefined;
}

/**
 * `galley agent token --stack S INSTANCE [--ttl 24h] [--json]`: mints and prints the token.
 *
 * @example await agentToken({ stack: "prod" }, ["web1"]) // prints gle1_…
 */
export async function agentToken(values: AgentTokenValues, positionals: string[]): Promise<number> {
  const [instance, ...rest] = positionals;
  if (!values.stack || !instance || rest.length > 0) {
    throw new GalleyError("USAGE", "galley agent token needs --stack STACK and one INSTANCE", {
      hint: "e.g. galley agent token --stack production web1",
    });
  }
  const kitchen = path.resolve(values.kitchen ?? ".");
  const dataDir = path.resolve(values.data ?? path.join(kitchen, ".galley", "server"));
  const caFile = path.join(dataDir, "tls", "ca.pem");
  if (!existsSync(caFile)) {
    throw new GalleyError("USAGE", `no server CA in ${caFile}: the token names the server's CA`, {
      hint: "start the server once (galley server) in this kitchen, or give its --data DIR",
    });
  }
  const ttlMs = parseTtl(values.ttl ?? "24h");
  const store = openSqliteStore(storeFile(kitchen));
  try {
    if (!(await store.getInstance(values.stack, instance))) {
      throw new GalleyError(
        "USAGE",
        `no instance ${instance} of stack ${values.stack} in the kitchen's store`,
        {
          hint: `check the names (galley stack status STACK); the instance must be in the stack file and the stack applied`,
        },
      );
    }
    const token = await mintEnrollment(store, {
      stack: values.stack,
      instance,
      caFingerprint: certificateFingerprint(readFileSync(caFile, "utf8")),
      ttlMs,
    });
    const expiresAt = new Date(Date.now() + ttlMs).toISOString();
    if (values.json) writeJson({ stack: values.stack, instance, token, expiresAt });
    else {
      write(`${token}\n`);
      process.stderr.write(
        `one-time token for ${values.stack}/${instance}, valid until ${expiresAt}: on the host, galley agent enroll --server URL --token TOKEN\n`,
      );
    }
    return exitCodes.ok;
  } finally {
    await store.close();
  }
}

/** `30m`, `24h`, `7d` in milliseconds. */
export function parseTtl(text: string): number {
  const match = /^(\d+)(m|h|d)$/.exec(text);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const ms = match ? Number(match[1]) * unit[match[2] as keyof typeof unit] : 0;
  if (!match || ms <= 0 || ms > 30 * 86_400_000) {
    throw new GalleyError("ARGS_INVALID", `--ttl ${text} is not a duration of 1m to 30d`, {
      hint: "e.g. --ttl 30m, --ttl 24h, --ttl 7d",
    });
  }
  return ms;
}

/** `galley agent token` as a command of its own (until `galley agent`'s table names it). */
export const agentTokenCommand = {
  summary: "mint a one-time enrollment token for an instance's agent",
  usage: "--stack STACK INSTANCE [--ttl 24h] [--kitchen DIR] [--data DIR] [--json]",
  options: {
    ...agentTokenOptions,
    json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
    help: { type: "boolean", short: "h", description: "show this help" },
  },
  run: (values: AgentTokenValues, positionals: string[]) => agentToken(values, positionals),
} as const;
