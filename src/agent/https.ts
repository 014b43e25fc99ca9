import * as https from "node:https";
import { errorMessage, GalleyError } from "../core/errors.ts";

// The agent's HTTPS calls to its server (enrollment, bundles): the server's own CA pinned, the
// host name checked, never the system's trust store. Only `GET /v1/ca.pem` before enrollment
// goes unverified, and its answer is checked against the token's fingerprint.

/** One request. `ca`: the pinned CA (PEM); `undefined` only with `insecure` (the CA fetch). */
export interface AgentRequest {
  method?: "GET" | "POST";
  ca?: string | undefined;
  insecure?: boolean;
  headers?: Record<string, string>;
  body?: unknown;
  signal?: AbortSignal | undefined;
  timeoutMs?: number;
}

/** An answer: its status and its bytes. */
export interface AgentResponse {
  status: number;
  body: Buffer;
}

/**
 * Sends one HTTPS request; HOST_UNREACHABLE (naming the server and why) when no answer comes.
 *
 * @example const res = await agentRequest(`${server}/v1/bundles/${id}`, { ca, headers: { authorization: `Agent ${session}` } })
 */
export function agentRequest(url: string, options: AgentRequest): Promise<AgentResponse> {
  const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const request = https.request(
      url,
      {
        method: options.method ?? "GET",
        ...(options.insecure ? { rejectUnauthorized: false } : { ca: options.ca, rejectUnauthorized: true }),
        headers: {
          ...options.headers,
          ...(body ? { "content-type": "application/json", "content-length": String(body.length) } : {}),
        },
        signal: options.signal,
        timeout: options.timeoutMs ?? 30_000,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks) }));
        response.on("error", (error) => reject(unreachable(url, error)));
      },
    );
    request.on("timeout", () => request.destroy(new Error("no answer in time")));
    request.on("error", (error) => reject(unreachable(url, error)));
    request.end(body);
  });
}

/** The error an API answer carries (`{ error: { code, message, hint } }`), or a description of the status. */
export function answerError(response: AgentResponse): { code: string; message: string; hint?: string } {
  try {
    const parsed = JSON.parse(response.body.toString("utf8")) as {
      error?: { code?: unknown; message?: unknown; hint?: unknown };
    };
    if (parsed.error && typeof parsed.error.message === "string") {
      return {
        code: typeof parsed.error.code === "string" ? parsed.error.code : `HTTP_${response.status}`,
        message: parsed.error.message,
        ...(typeof parsed.error.hint === "string" ? { hint: parsed.error.hint } : {}),
      };
    }
  } catch {
    // not JSON: the status says it
  }
  return { code: `HTTP_${response.status}`, message: `the server answered HTTP ${response.status}` };
}

function unreachable(url: string, error: unknown): GalleyError {
  const origin = new URL(url).origin;
  const code = (error as NodeJS.ErrnoException).code;
  const tls = typeof code === "string" && /CERT|SSL|TLS|SELF_SIGNED|ERR_TLS/.test(code);
  return new GalleyError(
    "HOST_UNREACHABLE",
    tls
      ? `the server ${origin} is not the one this agent pins (${code}: ${errorMessage(error)})`
      : `cannot reach the server ${origin}: ${code ?? errorMessage(error)}`,
    {
      hint: tls
        ? "check the URL (its host name must be in the server's certificate); enroll again if the server was rebuilt"
        : "check the URL and that `galley server` runs there and is reachable from this host",
      cause: error,
    },
  );
}
