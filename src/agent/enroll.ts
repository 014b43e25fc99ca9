import * as os from "node:os";
import { GalleyError } from "../core/errors.ts";
import { type AgentConfig, ensureAgentKey, keyFileOf, publicKeyPem, writeAgentConfig } from "./config.ts";
import { agentRequest, answerError } from "./https.ts";
import { caFingerprint, decodeEnrollmentToken } from "./token.ts";

// `galley agent enroll`: trade a one-time token for the server's trust in this host's own key.
// The CA comes from the server unverified and is accepted only when it is the one the token names;
// from then on it is pinned.

/** What enrolling needs. */
export interface EnrollOptions {
  /** the server's base URL (https://HOST:PORT) */
  server: string;
  token: string;
  configFile: string;
  /** the key file (default: agent.key beside the config) */
  keyFile?: string | undefined;
  /** make a new key even when one exists (a host whose key may have leaked) */
  newKey?: boolean | undefined;
  hostname?: string | undefined;
}

/** What enrolling did. */
export interface Enrolled extends AgentConfig {
  configFile: string;
  keyFile: string;
  caFingerprint: string;
}

/**
 * Enrolls this host: decodes the token, fetches and checks the server's CA, registers this host's
 * key (kept unless `newKey`), writes the config. ENROLL_REFUSED or HOST_UNREACHABLE say why not.
 *
 * @example await enrollAgent({ server: "https://galley.example:8443", token, configFile: "/etc/galley/agent.json" })
 */
export async function enrollAgent(options: EnrollOptions): Promise<Enrolled> {
  const token = decodeEnrollmentToken(options.token);
  const server = serverBase(options.server);
  const caResponse = await agentRequest(`${server}/v1/ca.pem`, { insecure: true });
  if (caResponse.status !== 200)
    throw new GalleyError("ENROLL_REFUSED", `${server}/v1/ca.pem answered HTTP ${caResponse.status}`, {
      hint: "check that the URL is a galley server's",
    });
  const ca = caResponse.body.toString("utf8");
  let fingerprint: string;
  try {
    fingerprint = caFingerprint(ca);
  } catch {
    throw new GalleyError("ENROLL_REFUSED", `${server}/v1/ca.pem is not a certificate`, {
      hint: "check that the URL is a galley server's",
    });
  }
  if (fingerprint !== token.ca)
    throw new GalleyError("ENROLL_REFUSED", "the server's CA is not the one the token names", {
      hint: `the server at ${server} presents CA ${fingerprint.slice(0, 16)}…, the token names ${token.ca.slice(0, 16)}…: check the URL, or mint a token on this server`,
    });
  const keyFile = options.keyFile ?? keyFileOf(options.configFile);
  const key = await ensureAgentKey(keyFile, options.newKey ?? false);
  const response = await agentRequest(`${server}/v1/agents/enroll`, {
    method: "POST",
    ca,
    body: {
      token: options.token.trim(),
      publicKey: publicKeyPem(key),
      hostname: options.hostname ?? os.hostname(),
    },
  });
  if (response.status !== 200 && response.status !== 201) {
    const error = answerError(response);
    throw new GalleyError("ENROLL_REFUSED", `the server refused the enrollment: ${error.message}`, {
      hint:
        error.hint ?? "a token works once and expires: mint a new one (galley agent token STACK INSTANCE)",
    });
  }
  const answer = JSON.parse(response.body.toString("utf8")) as { generation?: unknown };
  const config: AgentConfig = {
    server,
    ca,
    stack: token.stack,
    instance: token.instance,
    generation: typeof answer.generation === "number" ? answer.generation : 1,
    ...(options.keyFile ? { key: options.keyFile } : {}),
  };
  await writeAgentConfig(options.configFile, config);
  return { ...config, configFile: options.configFile, keyFile, caFingerprint: fingerprint };
}

/** `https://host:port` from what the user typed (a trailing slash or path dropped). */
export function serverBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new GalleyError("USAGE", `--server ${url} is not a URL`, { hint: "give https://HOST:PORT" });
  }
  if (parsed.protocol !== "https:")
    throw new GalleyError("USAGE", `--server ${url}: the agent speaks only https`, {
      hint: "give https://HOST:PORT",
    });
  return parsed.origin;
}
