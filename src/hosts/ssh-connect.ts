import * as fs from "node:fs/promises";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import ssh2, { type Client, type ConnectConfig } from "ssh2";
import { GalleyError, isGalleyError } from "../core/errors.ts";
import { verifyHostKey } from "./host-key.ts";
import type { SshTarget } from "./target.ts";

/** How connect reports progress and can be stopped. */
export interface ConnectOptions {
  signal?: AbortSignal | undefined;
  onStatus?: ((status: string) => void) | undefined;
  /** called before each attempt to connect, from 1 */
  onAttempt?: ((attempt: number) => void) | undefined;
  /** SSH keepalive period: a link that stays silent for 3 of them is declared lost (default 5 s) */
  keepaliveIntervalMs?: number | undefined;
}

/** An authenticated connection, and the jump host's connection it runs through, if any. */
export interface SshConnection {
  client: Client;
  jump: Client | undefined;
}

/** One SSH server to reach: the target itself or its jump host. */
export interface Endpoint {
  /** how messages name it: "web1", or "jump host bastion:22 of web1" */
  label: string;
  address: string;
  port: number;
  user: string;
  keyFile?: string | undefined;
  knownHostsFile: string;
  hostKeyChecking: "strict" | "accept-new";
}

/**
 * Connects and authenticates, through the jump host when there is one. Unreachable hosts are
 * tried `target.retries` more times with a short backoff; authentication and host key failures
 * are final.
 */
export async function openConnection(
  target: SshTarget,
  options: ConnectOptions = {},
): Promise<SshConnection> {
  const attempts = target.retries + 1;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    const where = `${target.address}:${target.port}`;
    options.onAttempt?.(attempt);
    options.onStatus?.(
      attempt === 1 ? `connecting to ${where}` : `connecting to ${where} (attempt ${attempt} of ${attempts})`,
    );
    try {
      return await connectOnce(target, options);
    } catch (error) {
      const retryable = isGalleyError(error) && error.code === "HOST_UNREACHABLE";
      if (!retryable) throw error;
      if (attempt >= attempts) {
        const tries = attempts > 1 ? ` (tried ${attempts} times)` : "";
        throw new GalleyError("HOST_UNREACHABLE", `${error.message}${tries}`, {
          ...(error.hint ? { hint: error.hint } : {}),
          cause: error,
        });
      }
      await sleep(200 * 2 ** (attempt - 1), options.signal);
    }
  }
}

async function connectOnce(target: SshTarget, options: ConnectOptions): Promise<SshConnection> {
  const deadline = Date.now() + target.connectTimeoutMs;
  const endpoint: Endpoint = { ...target, label: target.name };
  if (!target.jump)
    return { client: await handshake(endpoint, undefined, deadline, options), jump: undefined };
  const via = `${target.jump.address}:${target.jump.port}`;
  const jump = await handshake(
    { ...target.jump, label: `jump host ${via} of ${target.name}` },
    undefined,
    deadline,
    options,
  );
  try {
    const stream = await forward(jump, target, via, deadline);
    return { client: await handshake(endpoint, stream, deadline, options), jump };
  } catch (error) {
    jump.end();
    throw error;
  }
}

/** SSH handshake, host key check and authentication over a fresh TCP connection or a forwarded stream. */
async function handshake(
  endpoint: Endpoint,
  stream: Duplex | undefined,
  deadline: number,
  options: ConnectOptions,
): Promise<Client> {
  const auth = await authentication(endpoint);
  const check = await verifyHostKey(endpoint, options.onStatus);
  const sock = stream ?? (await tcpConnect(endpoint, deadline - Date.now(), options.signal));
  const client = new ssh2.Client();
  return new Promise<Client>((resolve, reject) => {
    const onAbort = () => {
      client.end();
      sock.destroy();
      reject(options.signal?.reason);
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    const settle = () => options.signal?.removeEventListener("abort", onAbort);
    let ready = false;
    // errors after ready are the host's to handle; one without a listener would end the process
    client.on("error", (error: Error & { level?: string }) => {
      if (ready) return;
      settle();
      reject(check.failure() ?? classify(error, endpoint, deadline));
      client.end();
      sock.destroy();
    });
    client.on("close", () => {
      settle();
      reject(check.failure() ?? unreachable(endpoint, "the connection closed during the SSH handshake"));
    });
    client.on("ready", () => {
      ready = true;
      settle();
      resolve(client);
    });
    client.connect({
      sock,
      username: endpoint.user,
      ...auth,
      // straight to the key (or the agent's keys): ssh2 would first try "none", one round trip lost
      authHandler: [auth.agent === undefined ? "publickey" : "agent"],
      readyTimeout: Math.max(deadline - Date.now(), 1),
      keepaliveInterval: options.keepaliveIntervalMs ?? 5000,
      keepaliveCountMax: 3,
      hostVerifier: check.verifier,
      algorithms: { serverHostKey: check.algorithms },
    });
  });
}

/** The key file's key, or the agent at $SSH_AUTH_SOCK when there is no key file. */
async function authentication(endpoint: Endpoint): Promise<Pick<ConnectConfig, "privateKey" | "agent">> {
  const who = `${endpoint.user}@${endpoint.label} (${endpoint.address}:${endpoint.port})`;
  if (endpoint.keyFile === undefined) {
    const agent = process.env.SSH_AUTH_SOCK;
    if (!agent) {
      throw new GalleyError(
        "SSH_AUTH_FAILED",
        `no key for ${who}: no key file is set and $SSH_AUTH_SOCK is empty`,
        {
          hint: "set key_file (ansible_ssh_private_key_file) for the host, or start ssh-agent and ssh-add the key",
        },
      );
    }
    return { agent };
  }
  let data: Buffer;
  try {
    data = await fs.readFile(endpoint.keyFile);
  } catch (error) {
    throw new GalleyError(
      "SSH_AUTH_FAILED",
      `cannot read the key file ${endpoint.keyFile} for ${who}: ${(error as Error).message}`,
      { hint: "fix key_file in the inventory (an absolute path, or relative to the inventory file)" },
    );
  }
  const parsed = ssh2.utils.parseKey(data);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase/i.test(parsed.message);
    throw new GalleyError(
      "SSH_AUTH_FAILED",
      `the key file ${endpoint.keyFile} for ${who}: ${parsed.message}`,
      {
        hint: encrypted
          ? "Galley does not ask for passphrases: load the key into ssh-agent (ssh-add) and drop key_file"
          : "use an OpenSSH private key (ed25519, rsa or ecdsa), e.g. one made by ssh-keygen -t ed25519",
      },
    );
  }
  return { privateKey: data };
}

function tcpConnect(endpoint: Endpoint, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: endpoint.address, port: endpoint.port });
    const fail = (error: GalleyError | unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(
      () => fail(unreachable(endpoint, `no answer within ${Math.max(timeoutMs, 0)} ms`)),
      Math.max(timeoutMs, 0),
    );
    socket.once("error", (error: NodeJS.ErrnoException) => fail(unreachable(endpoint, socketReason(error))));
    socket.once("connect", () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.removeAllListeners("error");
      // Nagle plus delayed ACKs cost ~40 ms per request (HOSTS.md): 48 → 5 ms per exec
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

function forward(jump: Client, target: SshTarget, via: string, deadline: number): Promise<Duplex> {
  const endpoint: Endpoint = { ...target, label: `${target.name} (through jump host ${via})` };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(unreachable(endpoint, "the jump host did not open the connection in time")),
      Math.max(deadline - Date.now(), 0),
    );
    jump.forwardOut("127.0.0.1", 0, target.address, target.port, (error, stream) => {
      clearTimeout(timer);
      if (error) reject(unreachable(endpoint, `the jump host could not connect: ${error.message}`));
      else resolve(stream);
    });
  });
}

function socketReason(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case "ECONNREFUSED":
      return "connection refused";
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return "the name does not resolve (DNS)";
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return "no route to the host";
    case "ETIMEDOUT":
      return "timed out";
    default:
      return error.message;
  }
}

function classify(
  error: Error & { level?: string; code?: string },
  endpoint: Endpoint,
  deadline: number,
): GalleyError {
  if (error.level === "client-authentication") {
    const key =
      endpoint.keyFile === undefined
        ? "the keys of the SSH agent ($SSH_AUTH_SOCK)"
        : `key ${endpoint.keyFile}`;
    return new GalleyError(
      "SSH_AUTH_FAILED",
      `${endpoint.label} (${endpoint.address}:${endpoint.port}) refused user ${endpoint.user} with ${key}`,
      {
        hint: `check the user name, and that the public key is in ~${endpoint.user}/.ssh/authorized_keys on the host`,
      },
    );
  }
  if (error.level === "client-timeout" && Date.now() >= deadline - 5) {
    return unreachable(endpoint, "the SSH handshake did not finish within the connect timeout");
  }
  if (error.level === "client-socket" && error.code) return unreachable(endpoint, socketReason(error));
  return unreachable(endpoint, error.message);
}

/** A HOST_UNREACHABLE error naming the host and its address. */
export function unreachable(
  endpoint: Pick<Endpoint, "label" | "address" | "port">,
  reason: string,
): GalleyError {
  return new GalleyError(
    "HOST_UNREACHABLE",
    `cannot reach ${endpoint.label} at ${endpoint.address}:${endpoint.port}: ${reason}`,
    {
      hint: "check that the host is up, that the address and port are right, and that sshd listens there",
    },
  );
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
