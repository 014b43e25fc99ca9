import { X509Certificate, createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { type ErrorCode, errorCodes, exitCodes, GalleyError } from "../core/errors.ts";
import { paint, write, writeJson } from "./output.ts";

// The CLI against a Galley server: the context file `galley login` writes (server, its CA, a
// token), and a small HTTPS client that pins that CA and turns the API's errors back into
// GalleyErrors with the same codes (so the same exit codes).

/** What `galley login` keeps: the server, the CA it pinned, and the token. */
export interface RemoteContext {
  server: string;
  caPem: string;
  caFingerprint: string;
  token: string;
}

/** The context file: $GALLEY_CONTEXT, else $XDG_CONFIG_HOME/galley/context.json, else ~/.config/galley/context.json. */
export function contextFile(env: NodeJS.ProcessEnv = process.env): string {
  if (env.GALLEY_CONTEXT) return path.resolve(env.GALLEY_CONTEXT);
  const config = env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config");
  return path.join(config, "galley", "context.json");
}

/** The saved context, or undefined when there is none. */
export async function readContext(file = contextFile()): Promise<RemoteContext | undefined> {
  const text = await fs.readFile(file, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<RemoteContext>;
    if (
      typeof value.server === "string" &&
      typeof value.caPem === "string" &&
      typeof value.token === "string" &&
      typeof value.caFingerprint === "string"
    )
      return value as RemoteContext;
  } catch {}
  throw new GalleyError("ARGS_INVALID", `${file}: not a Galley context file`, {
    hint: "log in again: galley login --server URL --token-file FILE",
  });
}

/** Writes the context file, readable by its owner only (it holds a token). */
export async function writeContext(context: RemoteContext, file = contextFile()): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  const temp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(temp, `${JSON.stringify(context, null, 2)}\n`, { mode: 0o600 });
  await fs.chmod(temp, 0o600);
  await fs.rename(temp, file);
}

/** The server a command talks to: --server, else $GALLEY_SERVER, else the context file's; undefined: this kitchen. */
export async function remoteFor(values: { server?: string | undefined }): Promise<Remote | undefined> {
  const asked = values.server ?? process.env.GALLEY_SERVER;
  if (asked === "local") return undefined;
  const saved = await readContext();
  if (asked === undefined) return saved ? new Remote(saved) : undefined;
  const server = normalizeServer(asked);
  if (!saved || saved.server !== server) {
    throw new GalleyError("ARGS_INVALID", `--server ${asked}: not logged in to ${server}`, {
      hint: `galley login --server ${server} --token-file FILE (pins its CA and keeps the token)`,
    });
  }
  return new Remote({ ...saved, token: process.env.GALLEY_TOKEN ?? saved.token });
}

/** https://host:port without a trailing slash or path. */
export function normalizeServer(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url.includes("://") ? url : `https://${url}`);
  } catch {
    throw new GalleyError("ARGS_INVALID", `--server ${url}: not a URL`, {
      hint: "e.g. --server https://galley.example.com:8443",
    });
  }
  if (parsed.protocol !== "https:")
    throw new GalleyError("ARGS_INVALID", `--server ${url}: a Galley server speaks HTTPS only`, {
      hint: "e.g. --server https://galley.example.com:8443",
    });
  return parsed.origin;
}

/** sha256 hex of a PEM certificate's DER: what `galley server` prints as its CA fingerprint. */
export function fingerprintOf(pem: string): string {
  const der = new X509Certificate(pem).raw;
  return createHash("sha256").update(der).digest("hex");
}

/** A response of the API: its status and parsed JSON body. */
export interface ApiResponse<T> {
  status: number;
  body: T;
}

/** A client of one Galley server: every request pins its CA and carries the token. */
export class Remote {
  readonly context: RemoteContext;
  constructor(context: RemoteContext) {
    this.context = context;
  }

  /** One request; an error answer becomes the GalleyError it names (same code, same exit code). */
  async request<T>(method: string, pathname: string, body?: unknown): Promise<T> {
    return (await this.send<T>(method, pathname, body)).body;
  }

  async send<T>(method: string, pathname: string, body?: unknown): Promise<ApiResponse<T>> {
    const answer = await httpsRequest(this.context.server, method, pathname, {
      ca: this.context.caPem,
      token: this.context.token,
      body,
    });
    let parsed: unknown;
    try {
      parsed = answer.text === "" ? undefined : JSON.parse(answer.text);
    } catch {
      throw new GalleyError(
        "SERVER_FAILED",
        `${method} ${pathname}: the server answered ${answer.status} with no JSON`,
        {
          hint: "is --server a Galley server?",
        },
      );
    }
    if (answer.status >= 400) throw apiError(method, pathname, answer.status, parsed);
    return { status: answer.status, body: parsed as T };
  }
}

function apiError(method: string, pathname: string, status: number, body: unknown): GalleyError {
  const error = (body as { error?: { code?: unknown; message?: unknown; hint?: unknown } } | undefined)
    ?.error;
  if (error && typeof error.code === "string" && typeof error.message === "string") {
    const code = (Object.hasOwn(errorCodes, error.code) ? error.code : "SERVER_FAILED") as ErrorCode;
    return new GalleyError(code, error.message, typeof error.hint === "string" ? { hint: error.hint } : {});
  }
  return new GalleyError("SERVER_FAILED", `${method} ${pathname}: the server answered ${status}`, {
    hint: "see the server's log",
  });
}

/** One HTTPS request with node:https (no header timeout: a stack action may answer after minutes). */
export async function httpsRequest(
  server: string,
  method: string,
  pathname: string,
  options: { ca?: string; token?: string; body?: unknown; insecure?: boolean },
): Promise<{ status: number; text: string }> {
  const https = await import("node:https");
  const url = new URL(pathname, server);
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        method,
        ...(options.insecure ? { rejectUnauthorized: false } : { ca: options.ca }),
        headers: {
          accept: "application/json",
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(payload === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", (error: NodeJS.ErrnoException) => {
      const tls = /certificate|self.signed|CERT|SSL/i.test(`${error.code} ${error.message}`);
      reject(
        new GalleyError(
          tls ? "SERVER_UNTRUSTED" : "SERVER_UNREACHABLE",
          tls
            ? `${server}: its certificate is not signed by the CA pinned at login (${error.message})`
            : `${server}: cannot reach the server (${error.code ?? error.message})`,
          {
            hint: tls
              ? "if the server's CA really changed, log in again: galley login --server URL --ca-fingerprint SHA256"
              : "is galley server running there? check --server and the network",
          },
        ),
      );
    });
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

interface LoginValues {
  server?: string;
  token?: string;
  "token-file"?: string;
  "ca-fingerprint"?: string;
  json: boolean;
}

/** `galley login --server URL [--token T | --token-file F] [--ca-fingerprint SHA256]`. */
export const loginCommand = {
  summary: "log in to a Galley server: pin its CA, check the token, keep both in the context file",
  usage: "--server URL [--token T | --token-file F] [--ca-fingerprint SHA256] [--json]",
  options: {
    server: { type: "string", description: "the server, e.g. https://galley.example.com:8443" },
    token: { type: "string", description: "the token (galley token create); prefer --token-file" },
    "token-file": { type: "string", description: "a file holding the token (e.g. the server's admin.token)" },
    "ca-fingerprint": {
      type: "string",
      description: "the sha256 of the server's CA (galley server prints it): pinned only when it matches",
    },
    json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
    help: { type: "boolean", short: "h", description: "show this help" },
  } as const,
  async run(values: LoginValues, positionals: string[]): Promise<number> {
    if (positionals.length > 0 || !values.server)
      throw new GalleyError("USAGE", "galley login: which server?", {
        hint: "galley login --server https://galley.example.com:8443 --token-file admin.token",
      });
    const server = normalizeServer(values.server);
    const token = await tokenOf(values);
    const ca = await httpsRequest(server, "GET", "/v1/ca.pem", { insecure: true });
    if (ca.status !== 200 || !ca.text.includes("BEGIN CERTIFICATE"))
      throw new GalleyError("SERVER_FAILED", `${server}/v1/ca.pem: no CA certificate (HTTP ${ca.status})`, {
        hint: "is --server a Galley server?",
      });
    const fingerprint = fingerprintOf(ca.text);
    const expected = values["ca-fingerprint"]
      ?.toLowerCase()
      .replace(/^sha256:/, "")
      .replaceAll(":", "");
    if (expected !== undefined && expected !== fingerprint) {
      throw new GalleyError(
        "SERVER_UNTRUSTED",
        `${server}: its CA's fingerprint is ${fingerprint}, not ${values["ca-fingerprint"]}: nothing was saved`,
        { hint: "compare with what galley server printed on its machine; someone may be in between" },
      );
    }
    const saved = await readContext().catch(() => undefined);
    if (expected === undefined && saved?.server === server && saved.caFingerprint !== fingerprint) {
      throw new GalleyError(
        "SERVER_UNTRUSTED",
        `${server}: its CA changed since the last login (was ${saved.caFingerprint}, now ${fingerprint})`,
        { hint: "if that is expected, log in with --ca-fingerprint of the new CA (galley server prints it)" },
      );
    }
    const context: RemoteContext = { server, caPem: ca.text, caFingerprint: fingerprint, token };
    const { stacks } = await new Remote(context).request<{ stacks: { name: string }[] }>("GET", "/v1/stacks");
    await writeContext(context);
    if (values.json) {
      writeJson({
        server,
        caFingerprint: fingerprint,
        pinned: expected !== undefined ? "matched" : "first use",
        stacks: stacks.map((s) => s.name),
        context: contextFile(),
      });
    } else {
      write(`${paint("bold", `logged in to ${server}`)}\n`);
      write(
        `  CA sha256 ${fingerprint}${expected !== undefined ? " (matches --ca-fingerprint)" : " (pinned on first use: compare it with what galley server printed)"}\n`,
      );
      write(`  stacks: ${stacks.map((s) => s.name).join(", ") || "none visible to this token"}\n`);
      write(`  saved in ${contextFile()}\n`);
    }
    return exitCodes.ok;
  },
};

async function tokenOf(values: LoginValues): Promise<string> {
  if (values.token !== undefined && values["token-file"] !== undefined)
    throw new GalleyError("USAGE", "give --token or --token-file, not both", {
      hint: "--token-file keeps the token out of your shell history",
    });
  const token =
    values.token ??
    (values["token-file"] === undefined
      ? process.env.GALLEY_TOKEN
      : await fs.readFile(values["token-file"], "utf8").catch(() => {
          throw new GalleyError("FILE_NOT_FOUND", `--token-file ${values["token-file"]}: cannot read it`, {
            hint: "name the file holding the token (galley token create prints one)",
          });
        }));
  if (!token?.trim())
    throw new GalleyError("USAGE", "galley login: which token?", {
      hint: "--token-file FILE (the server's admin.token, or one from galley token create), or $GALLEY_TOKEN",
    });
  return token.trim();
}
