import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

// What an enrolled agent keeps on its host: the config (which server, its CA, which instance it
// speaks for) and its own ed25519 key, beside each other; the key never leaves the host.

/** The agent's files by default (`--config` moves the config, and the key with it). */
export const defaultConfigFile = "/etc/galley/agent.json";
export const defaultStateDir = "/var/lib/galley/agent";

/** agent.json: written by `galley agent enroll`, read by `galley agent run`. */
export interface AgentConfig {
  /** the server's base URL: https://HOST:PORT */
  server: string;
  /** the server's CA certificate (PEM): pinned for every request and the channel */
  ca: string;
  stack: string;
  instance: string;
  /** the enrollment generation the server answered */
  generation: number;
  /** the key file; default: agent.key beside the config */
  key?: string | undefined;
}

/** The key file of a config file: `agent.key` in the same folder. */
export function keyFileOf(configFile: string): string {
  return path.join(path.dirname(path.resolve(configFile)), "agent.key");
}

/** Reads agent.json; AGENT_CONFIG_INVALID when it is missing or wrong (with what to do). */
export async function readAgentConfig(file: string): Promise<AgentConfig> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
    throw new GalleyError(
      "AGENT_CONFIG_INVALID",
      missing ? `this host is not enrolled: no ${file}` : `cannot read ${file}: ${errorMessage(error)}`,
      { hint: "galley agent enroll --server URL --token TOKEN (or give --config FILE)" },
    );
  }
  let parsed: Partial<AgentConfig>;
  try {
    parsed = JSON.parse(text) as Partial<AgentConfig>;
  } catch {
    parsed = {};
  }
  const ok =
    typeof parsed.server === "string" &&
    typeof parsed.ca === "string" &&
    typeof parsed.stack === "string" &&
    typeof parsed.instance === "string";
  if (!ok)
    throw new GalleyError(
      "AGENT_CONFIG_INVALID",
      `${file} is not an agent config (server, ca, stack, instance)`,
      {
        hint: "enroll again: galley agent enroll --server URL --token TOKEN",
      },
    );
  return {
    ...(parsed as AgentConfig),
    generation: typeof parsed.generation === "number" ? parsed.generation : 1,
  };
}

/** Writes agent.json atomically (0600: it names the server and instance, nothing secret, but stays root's). */
export async function writeAgentConfig(file: string, config: AgentConfig): Promise<void> {
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

/** The agent's private key, or undefined when the file does not exist. */
export async function readAgentKey(file: string): Promise<KeyObject | undefined> {
  let pem: string;
  try {
    pem = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new GalleyError(
      "AGENT_CONFIG_INVALID",
      `cannot read the agent key ${file}: ${errorMessage(error)}`,
      {
        hint: "run as root, or enroll again with --new-key",
      },
    );
  }
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== "ed25519") throw new Error(`a ${key.asymmetricKeyType} key`);
    return key;
  } catch (error) {
    throw new GalleyError(
      "AGENT_CONFIG_INVALID",
      `${file} is not an ed25519 private key: ${errorMessage(error)}`,
      {
        hint: "enroll again with --new-key",
      },
    );
  }
}

/** The agent's key: the one in `file` unless `fresh`, else a new one written there (PKCS#8 PEM, 0600). */
export async function ensureAgentKey(file: string, fresh = false): Promise<KeyObject> {
  const kept = fresh ? undefined : await readAgentKey(file);
  if (kept) return kept;
  const { privateKey } = generateKeyPairSync("ed25519");
  await fs.mkdir(path.dirname(path.resolve(file)), { recursive: true, mode: 0o700 });
  await writeFileAtomic(file, privateKey.export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
  return privateKey;
}

/** The public half of the agent's key, as the server registers it (spki PEM). */
export function publicKeyPem(key: KeyObject): string {
  return createPublicKey(key).export({ type: "spki", format: "pem" }) as string;
}
