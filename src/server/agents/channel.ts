import { createPublicKey, randomBytes, verify } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import { errorMessage } from "../../core/errors.ts";
import {
  type AgentMessage,
  type AgentTarget,
  authPayload,
  parseAgentMessage,
  type ServerMessage,
} from "../../fleet/agent-protocol.ts";
import type { ServerSettings } from "../context.ts";

// The agent channel's transport: the WebSocket upgrade on /v1/agents/channel, the hello → auth →
// welcome handshake, frame validation, keepalive and silence detection. What the messages mean
// (jobs, calls, reports) is the hub's business (hub.ts).

/** Where agents connect (on the server's own HTTPS port). */
export const channelPath = "/v1/agents/channel";

/** The largest frame either side accepts: a converge job with its stack state fits well within. */
export const maxFrameBytes = 16 * 1024 * 1024;

/** What the channel needs of the store (the kitchen's Store has all of it). */
export interface ChannelStore {
  getAgent(stack: string, instance: string): Promise<{ publicKey: string; generation: number } | undefined>;
  agentSeen(stack: string, instance: string, at: string): Promise<void>;
  appendAudit(entry: {
    actor: string;
    action: string;
    stack?: string;
    target?: string;
    outcome: "ok" | "refused" | "auto";
    reason?: string;
  }): Promise<unknown>;
}

/** What the channel needs of the server. */
export interface ChannelOptions {
  store: ChannelStore;
  settings: Pick<
    ServerSettings,
    "keepaliveMs" | "missedKeepalives" | "runIntervalMs" | "splayMs" | "runMode" | "metricsMs"
  >;
  log(line: string): void;
  /** this server's name, sent in hello */
  id: string;
  /** how long a new connection has to authenticate (default 10 s) */
  authTimeoutMs?: number | undefined;
}

/** What the hub does with authenticated connections. */
export interface ChannelHandler {
  authenticated(session: AgentSession): void;
  /** every validated message after auth but keepalives */
  message(session: AgentSession, message: AgentMessage): void;
  /** the connection ended; `reason`: "closed", "missed 3 keepalives", "replaced by a newer connection"… */
  closed(session: AgentSession, reason: string): void;
}

const authHint =
  "enroll the agent again: galley agent token --stack STACK INSTANCE on the server, then galley agent enroll on the host";

/** One authenticated agent connection. */
export class AgentSession {
  readonly target: AgentTarget;
  readonly generation: number;
  /** the random secret that authorizes this agent's HTTPS calls (bundles) while it is connected */
  readonly session = randomBytes(32).toString("base64url");
  readonly connectedAt = new Date().toISOString();
  lastSeenAt = this.connectedAt;
  readonly remote: string;
  #connection: Connection;

  constructor(connection: Connection, target: AgentTarget, generation: number) {
    this.#connection = connection;
    this.target = target;
    this.generation = generation;
    this.remote = connection.remote;
  }

  /** `<stack>/<instance>`, as logs and audit actors name it */
  get name(): string {
    return `${this.target.stack}/${this.target.instance}`;
  }

  /** false when the connection is no longer open */
  send(message: ServerMessage): boolean {
    return this.#connection.send(message);
  }

  /** refuses the agent (refused + audit + close) */
  refuse(reason: string): void {
    this.#connection.refuse(reason);
  }

  /** closes the connection; the hub hears `closed(reason)` */
  close(reason: string): void {
    this.#connection.end(reason, 4000);
  }
}

/**
 * The channel on a server's upgrade requests: `handleUpgrade` takes every upgrade the HTTPS server
 * sees and answers 404 for any other path.
 */
export class AgentChannel {
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes, clientTracking: true });
  readonly #options: ChannelOptions;
  readonly #handler: ChannelHandler;
  #closing = false;

  constructor(options: ChannelOptions, handler: ChannelHandler) {
    this.#options = options;
    this.#handler = handler;
  }

  /** the `upgrade` listener of the HTTPS server */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const pathname = (req.url ?? "").split("?")[0];
    if (pathname !== channelPath || this.#closing) {
      const status = this.#closing ? "503 Service Unavailable" : "404 Not Found";
      socket.on("error", () => {});
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.once("finish", () => socket.destroy());
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      new Connection(
        ws,
        req.socket.remoteAddress ?? "unknown",
        this.#options,
        this.#handler,
        () => this.#closing,
      );
    });
  }

  /** closes every connection (1001, "server shutting down") and stops accepting new ones */
  async close(): Promise<void> {
    this.#closing = true;
    for (const ws of this.#wss.clients) ws.close(1001, "server shutting down");
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        for (const ws of this.#wss.clients) ws.terminate();
      }, 2000);
      this.#wss.close(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}

class Connection {
  readonly remote: string;
  readonly #ws: WebSocket;
  readonly #options: ChannelOptions;
  readonly #handler: ChannelHandler;
  readonly #nonce = randomBytes(32).toString("base64url");
  #state: "hello" | "authenticating" | "open" | "ended" = "hello";
  #session: AgentSession | undefined;
  #claimed: AgentTarget | undefined;
  #waiting: string[] = [];
  #endReason = "closed";
  #timers: NodeJS.Timeout[] = [];
  #silence: NodeJS.Timeout | undefined;
  #keepaliveSeq = 0;
  #seenWrittenAt = 0;

  constructor(
    ws: WebSocket,
    remote: string,
    options: ChannelOptions,
    handler: ChannelHandler,
    closing: () => boolean,
  ) {
    this.#ws = ws;
    this.remote = remote;
    this.#options = options;
    this.#handler = handler;
    ws.on("error", (error: Error & { code?: string }) => {
      const reason =
        error.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
          ? `a frame larger than ${maxFrameBytes} bytes`
          : `a broken frame: ${errorMessage(error)}`;
      this.#audit("refused", reason);
      this.#endReason = reason;
    });
    ws.on("message", (data, isBinary) => this.#frame(data, isBinary));
    ws.on("close", () => this.#closed(closing()));
    this.send({ type: "hello", nonce: this.#nonce, server: options.id });
    const authTimeoutMs = options.authTimeoutMs ?? 10_000;
    this.#timers.push(
      setTimeout(
        () => this.#state === "hello" && this.refuse(`no auth within ${authTimeoutMs / 1000} s of hello`),
        authTimeoutMs,
      ),
    );
  }

  send(message: ServerMessage): boolean {
    if (this.#ws.readyState !== this.#ws.OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  refuse(reason: string): void {
    if (this.#state === "ended") return;
    this.#audit("refused", reason);
    this.send({ type: "refused", error: { code: "AGENT_AUTH_FAILED", message: reason, hint: authHint } });
    this.end(`refused: ${reason}`, 1008);
  }

  end(reason: string, code: number): void {
    if (this.#state === "ended") return;
    this.#state = "ended";
    this.#endReason = reason;
    this.#ws.close(code, reason.slice(0, 100));
    // a peer that does not answer the close handshake is cut off
    const cut = setTimeout(() => this.#ws.terminate(), 5000);
    cut.unref();
  }

  #frame(data: RawData, isBinary: boolean): void {
    if (this.#state === "ended") return;
    this.#silence?.refresh();
    const problem = this.#handle(data, isBinary);
    if (problem) this.refuse(problem);
  }

  /** handles one frame; returns why the agent is refused, if it is */
  #handle(data: RawData, isBinary: boolean): string | undefined {
    if (isBinary) return "a binary frame (the channel speaks JSON text frames)";
    const text = (
      Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.isBuffer(data)
          ? data
          : Buffer.from(new Uint8Array(data))
    ).toString("utf8");
    const parsed = parseAgentMessage(text);
    if ("error" in parsed) return parsed.error;
    const { message } = parsed;
    if (this.#state === "authenticating") {
      // an agent waits for welcome; a few early frames are kept for after it, a flood is not
      if (this.#waiting.length >= 16) return "a flood of frames before welcome";
      this.#waiting.push(text);
      return undefined;
    }
    if (message.type === "auth") {
      const session = this.#session;
      if (!session) {
        void this.#authenticate(message);
        return undefined;
      }
      const named = `${message.stack}/${message.instance}`;
      return named === session.name
        ? "a second auth on one connection: its nonce was already used"
        : `an auth naming another instance (${named}) on the connection of ${session.name}`;
    }
    if (!this.#session) return `a "${message.type}" message before auth`;
    this.#seen();
    if (message.type === "keepalive") return undefined;
    try {
      this.#handler.message(this.#session, message);
    } catch (error) {
      // the server's fault, not the agent's: logged, the connection stays
      this.#options.log(
        `agent ${this.#session.name}: a "${message.type}" message failed: ${errorMessage(error)}`,
      );
    }
    return undefined;
  }

  async #authenticate(message: Extract<AgentMessage, { type: "auth" }>): Promise<void> {
    this.#state = "authenticating";
    const { stack, instance } = message;
    this.#claimed = { stack, instance };
    let record: { publicKey: string; generation: number } | undefined;
    try {
      record = await this.#options.store.getAgent(stack, instance);
    } catch (error) {
      this.#options.log(`agent channel: cannot read the agent ${stack}/${instance}: ${errorMessage(error)}`);
      this.end("the server's store failed", 1011);
      return;
    }
    if ((this.#state as string) === "ended") return;
    if (!record) return this.refuse(`no agent is enrolled for ${stack}/${instance}`);
    if (!this.#verify(record.publicKey, message)) {
      return this.refuse(
        `the signature of ${stack}/${instance} does not match this connection's nonce and the enrolled key (a wrong or replaced key, or a replayed auth)`,
      );
    }
    const session = new AgentSession(this, { stack, instance }, record.generation);
    this.#session = session;
    this.#state = "open";
    const { settings } = this.#options;
    this.send({
      type: "welcome",
      session: session.session,
      keepaliveMs: settings.keepaliveMs,
      runIntervalMs: settings.runIntervalMs,
      splayMs: settings.splayMs,
      runMode: settings.runMode,
      metricsMs: settings.metricsMs,
    });
    this.#audit("ok", `connected (generation ${record.generation})`);
    this.#seen();
    const keepalive = setInterval(
      () => this.send({ type: "keepalive", seq: ++this.#keepaliveSeq }),
      settings.keepaliveMs,
    );
    this.#timers.push(keepalive);
    this.#silence = setTimeout(() => {
      this.#endReason = `missed ${settings.missedKeepalives} keepalives`;
      this.#state = "ended";
      this.#ws.terminate();
    }, settings.missedKeepalives * settings.keepaliveMs);
    this.#timers.push(this.#silence);
    this.#handler.authenticated(session);
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const text of waiting) this.#frame(Buffer.from(text), false);
  }

  #verify(publicKey: string, message: { stack: string; instance: string; signature: string }): boolean {
    try {
      const key = createPublicKey(publicKey);
      if (key.asymmetricKeyType !== "ed25519") return false;
      const payload = Buffer.from(authPayload(this.#nonce, message.stack, message.instance));
      return verify(null, payload, key, Buffer.from(message.signature, "base64"));
    } catch {
      return false;
    }
  }

  /** records that the agent is alive: at most once per keepalive interval in the store */
  #seen(): void {
    const session = this.#session;
    if (!session) return;
    const now = Date.now();
    session.lastSeenAt = new Date(now).toISOString();
    if (now - this.#seenWrittenAt < this.#options.settings.keepaliveMs) return;
    this.#seenWrittenAt = now;
    this.#options.store
      .agentSeen(session.target.stack, session.target.instance, session.lastSeenAt)
      .catch((error: unknown) =>
        this.#options.log(`agent ${session.name}: last seen not recorded: ${errorMessage(error)}`),
      );
  }

  #closed(serverClosing: boolean): void {
    this.#state = "ended";
    for (const timer of this.#timers) clearTimeout(timer);
    if (this.#session)
      this.#handler.closed(this.#session, serverClosing ? "server shutting down" : this.#endReason);
  }

  #audit(outcome: "ok" | "refused", reason: string): void {
    const target = this.#session?.target ?? this.#claimed;
    const entry = {
      actor: this.#session ? `agent:${this.#session.name}` : "anonymous",
      action: outcome === "ok" ? "agent.connect" : this.#session ? "agent.channel" : "agent.auth",
      ...(target ? { stack: target.stack, target: target.instance } : {}),
      outcome,
      reason: `${reason} (from ${this.remote})`,
    };
    this.#options.store
      .appendAudit(entry)
      .catch((error: unknown) =>
        this.#options.log(`agent channel: audit not recorded: ${errorMessage(error)}`),
      );
  }
}
