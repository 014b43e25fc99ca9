// Test support for the agent hub: a real HTTPS server with a throwaway certificate, a real SQLite
// store, and a real WebSocket client that speaks the agent's side of the protocol by hand (so that
// tests can also speak it wrong). Used by the tests beside it only.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import WebSocket from "ws";
import { authPayload, type ServerMessage } from "../../fleet/agent-protocol.ts";
import { openSqliteStore } from "../../store/sqlite.ts";
import type { Store } from "../../store/store.ts";
import type { ServerSettings } from "../context.ts";
import { createAgentHub, type ServerAgentHub } from "./hub.ts";

/** Settings short enough for tests (keepalive loss in well under a second). */
export const testSettings: ServerSettings = {
  keepaliveMs: 30_000,
  missedKeepalives: 3,
  runIntervalMs: 60_000,
  splayMs: 1000,
  runMode: "enforce",
  metricsMs: 60_000,
  schedulerMs: 60_000,
  enrollmentTtlMs: 60_000,
};

/** A hub served by a real HTTPS server on 127.0.0.1, over a real store in a temp dir. */
export interface HubFixture {
  dir: string;
  store: Store;
  hub: ServerAgentHub;
  server: Server;
  /** wss://127.0.0.1:PORT/v1/agents/channel */
  channelUrl: string;
  /** https://127.0.0.1:PORT */
  url: string;
  /** the certificate clients pin */
  ca: string;
  logs: string[];
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 and localhost, made by openssl in `dir`. */
export function throwawayTls(dir: string): { key: string; cert: string } {
  const key = path.join(dir, "key.pem");
  const cert = path.join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
      ...["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
    ],
    { stdio: "ignore" },
  );
  return { key: readFileSync(key, "utf8"), cert: readFileSync(cert, "utf8") };
}

/** Starts a hub on a real HTTPS server; `close` stops both and removes the temp dir. */
export async function startHub(
  settings: Partial<ServerSettings> = {},
  options: { authTimeoutMs?: number } = {},
): Promise<HubFixture> {
  const dir = mkdtempSync(path.join(tmpdir(), "galley-hub-"));
  const tls = throwawayTls(dir);
  const store = openSqliteStore(path.join(dir, "galley.db"));
  const logs: string[] = [];
  const hub = createAgentHub({
    store,
    settings: { ...testSettings, ...settings },
    log: (line) => logs.push(line),
    id: "test-server",
    authTimeoutMs: options.authTimeoutMs,
  });
  const server = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  hub.attach(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    dir,
    store,
    hub,
    server,
    url: `https://127.0.0.1:${port}`,
    channelUrl: `wss://127.0.0.1:${port}/v1/agents/channel`,
    ca: tls.cert,
    logs,
    async close() {
      await hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** An ed25519 key pair as an agent keeps it. */
export function agentKey(): { privateKey: KeyObject; publicKey: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  return { privateKey, publicKey: publicKey.export({ type: "spki", format: "pem" }).toString() };
}

/** Registers an agent for stack/instance in the store directly; returns its key. */
export async function enrolled(store: Store, stack: string, instance: string) {
  const key = agentKey();
  const record = await store.registerAgent({ stack, instance, publicKey: key.publicKey });
  return { ...key, generation: record.generation };
}

/** How long a test waits for something that should happen (generous: the machine is shared). */
export const deadlineMs = 20_000;

/** A hand-driven agent: a real `ws` client pinned to the fixture's certificate. */
export class TestAgent {
  readonly ws: WebSocket;
  readonly received: ServerMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on("message", (data) => {
      this.received.push(JSON.parse(String(data)) as ServerMessage);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => {
        resolve({ code, reason: String(reason) });
        for (const wake of this.#waiters.splice(0)) wake();
      });
    });
    ws.on("error", () => {});
  }

  /** opens the channel (the server's hello arrives first) */
  static async open(
    fixture: Pick<HubFixture, "channelUrl" | "ca">,
    url = fixture.channelUrl,
  ): Promise<TestAgent> {
    const ws = new WebSocket(url, { ca: fixture.ca });
    const agent = new TestAgent(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return agent;
  }

  /** opens, answers hello with a signature of `key` and waits for welcome (or refused) */
  static async connect(
    fixture: Pick<HubFixture, "channelUrl" | "ca">,
    stack: string,
    instance: string,
    key: KeyObject,
  ): Promise<TestAgent> {
    const agent = await TestAgent.open(fixture);
    await agent.auth(stack, instance, key);
    await agent.next((m) => m.type === "welcome" || m.type === "refused");
    return agent;
  }

  /** answers the hello: signs authPayload(nonce, stack, instance) */
  async auth(stack: string, instance: string, key: KeyObject): Promise<Record<string, unknown>> {
    const hello = await this.next((m) => m.type === "hello");
    if (hello.type !== "hello") throw new Error("no hello");
    const signature = sign(null, Buffer.from(authPayload(hello.nonce, stack, instance)), key).toString(
      "base64",
    );
    const message = { type: "auth", stack, instance, signature, agent: "test-agent" };
    this.send(message);
    return message;
  }

  send(message: unknown): void {
    this.ws.send(typeof message === "string" ? message : JSON.stringify(message));
  }

  /** the first message received (since the start) that matches, waiting for it */
  async next<T extends ServerMessage = ServerMessage>(
    match: (message: ServerMessage) => boolean,
    options: { after?: number } = {},
  ): Promise<T> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      const found = this.received.slice(options.after ?? 0).find(match);
      if (found) return found as T;
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error("the channel closed while waiting");
      if (Date.now() > until) throw new Error(`no matching message within ${deadlineMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.ws.terminate();
  }
}

/** Waits until `check` holds (polling), failing after the deadline with `what`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${deadlineMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
