import { createPublicKey, randomBytes, verify } from "node:crypto";
import * as fs from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { type WebSocket, WebSocketServer } from "ws";
import { createBundle, type CreatedBundle } from "../cookbooks/bundle.ts";
import { cookbookDigest } from "../cookbooks/digest.ts";
import {
  type AgentMessage,
  type AgentRunReport,
  authPayload,
  type ConvergeJob,
  type ServerMessage,
} from "../fleet/agent-protocol.ts";

// Test fixtures of the agent's units and of test/agent.test.ts: a real bundle of one cookbook
// whose recipe writes one file, and a converge job for it.

/** A bundle (in `dir`) of cookbook `motd`: its default recipe writes attrs.motd.text to attrs.motd.path (after `sleep attrs.motd.sleep`, when given). */
export async function motdBundle(dir: string, text = "hello"): Promise<CreatedBundle> {
  const book = path.join(dir, "src", "motd");
  await fs.mkdir(path.join(book, "recipes"), { recursive: true });
  await fs.writeFile(path.join(book, "cookbook.yaml"), "name: motd\nversion: 1.0.0\n");
  await fs.writeFile(
    path.join(book, "recipes", "default.ts"),
    [
      "export default (r) => {",
      // attrs.motd.sleep: a command that runs that long first (to stop a job mid-run)
      "  if (r.attrs.motd.sleep) r.execute('sleep-' + r.attrs.motd.sleep, { command: ['sleep', String(r.attrs.motd.sleep)] });",
      `  r.file(r.attrs.motd.path, { content: r.attrs.motd.text + ${JSON.stringify(`\n${text}\n`)}, mode: "0644" });`,
      "};",
      "",
    ].join("\n"),
  );
  const sha256 = await cookbookDigest(book);
  const lock = {
    lockfileVersion: 1,
    sourcesSha256: "0".repeat(64),
    cookbooks: { motd: { version: "1.0.0", source: { path: "./motd" }, sha256, depends: {} } },
  };
  return createBundle(
    {
      cookbooks: [{ name: "motd", version: "1.0.0", dir: book, sha256 }],
      lock: `${JSON.stringify(lock, null, 2)}\n`,
      runLists: { default: ["motd"] },
    },
    { dir: path.join(dir, "out") },
  );
}

/** A job converging `bundle` so that `file` holds `text`. */
export function motdJob(
  bundle: string,
  file: string,
  text: string,
  extra: Partial<ConvergeJob> = {},
): ConvergeJob {
  return {
    bundle,
    runList: ["motd"],
    attributes: [
      { source: { level: "instance", label: "instance test" }, values: { motd: { path: file, text } } },
    ],
    mode: "apply",
    command: "galley test",
    secrets: [],
    ...extra,
  };
}

/** A CA and a server certificate it signed (for localhost and 127.0.0.1), made with openssl in `dir`. */
export async function testCertificates(dir: string): Promise<{ ca: string; key: string; cert: string }> {
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const run = promisify(execFile);
  await fs.mkdir(dir, { recursive: true });
  const at = (name: string) => path.join(dir, name);
  const ed = ["-newkey", "ed25519", "-nodes"];
  await run("openssl", [
    "req",
    "-x509",
    ...ed,
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=galley test CA",
  ]);
  await run("openssl", [
    "req",
    ...ed,
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
    "-subj",
    "/CN=localhost",
  ]);
  await fs.writeFile(at("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-out",
    at("server.pem"),
    "-days",
    "2",
    "-extfile",
    at("ext.cnf"),
  ]);
  const read = (name: string) => fs.readFile(at(name), "utf8");
  return { ca: await read("ca.pem"), key: await read("server.key"), cert: await read("server.pem") };
}

/** The settings the peer welcomes agents with: short, for tests. */
export const peerWelcome = {
  keepaliveMs: 100,
  runIntervalMs: 400,
  splayMs: 100,
  runMode: "report" as const,
  metricsMs: 100,
};

/**
 * The server's side of the channel protocol and the HTTPS routes an agent calls (ca.pem, enroll,
 * bundles), written from the protocol: the peer of the agent's tests, not Galley's server.
 */
export class Peer {
  readonly secrets = new Set<string>();
  readonly keys = new Map<string, string>();
  readonly stored = new Map<number, AgentRunReport>();
  duplicates = 0;
  bundleFetches = 0;
  readonly received: AgentMessage[] = [];
  readonly sessions = new Set<string>();
  sockets = new Set<WebSocket>();
  silent = false;
  #server: https.Server | undefined;
  #wss: WebSocketServer | undefined;
  #timers = new Set<NodeJS.Timeout>();
  readonly bundles = new Map<string, Buffer>();
  port = 0;

  readonly tls: { ca: string; key: string; cert: string };

  constructor(tls: { ca: string; key: string; cert: string }) {
    this.tls = tls;
  }

  async listen(port = 0): Promise<void> {
    const server = https.createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      void this.#http(req, res);
    });
    const wss = new WebSocketServer({ server, path: "/v1/agents/channel" });
    wss.on("connection", (socket) => this.#channel(socket));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    this.#wss = wss;
  }

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    for (const socket of this.sockets) socket.terminate();
    this.sockets.clear();
    this.#wss?.close();
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve) ?? resolve(undefined));
  }

  send(message: ServerMessage): void {
    for (const socket of this.sockets) socket.send(JSON.stringify(message));
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method === "GET" && req.url === "/v1/ca.pem") return void res.end(this.tls.ca);
    if (req.method === "POST" && req.url === "/v1/agents/enroll") {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { token: string; publicKey: string };
      const token = JSON.parse(Buffer.from(body.token.slice(5), "base64url").toString()) as {
        s: string;
        i: string;
        k: string;
      };
      if (!this.secrets.delete(token.k))
        return json(401, {
          error: { code: "UNAUTHORIZED", message: "the enrollment token is used, expired or unknown" },
        });
      this.keys.set(`${token.s}/${token.i}`, body.publicKey);
      return json(200, { stack: token.s, instance: token.i, generation: 1 });
    }
    const bundle = /^\/v1\/bundles\/([0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
    if (req.method === "GET" && bundle) {
      const session = /^Agent (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!session || !this.sessions.has(session))
        return json(401, { error: { code: "UNAUTHORIZED", message: "no session" } });
      const data = this.bundles.get(bundle);
      if (!data) return json(404, { error: { code: "NOT_FOUND", message: "no such bundle" } });
      this.bundleFetches += 1;
      res.writeHead(200, { "content-type": "application/gzip" });
      return void res.end(data);
    }
    json(404, { error: { code: "NOT_FOUND", message: "no route" } });
  }

  #channel(socket: WebSocket): void {
    this.sockets.add(socket);
    socket.on("close", () => this.sockets.delete(socket));
    const nonce = randomBytes(16).toString("base64url");
    const send = (m: ServerMessage) => socket.send(JSON.stringify(m));
    send({ type: "hello", nonce, server: "test peer" });
    socket.on("message", (data) => {
      const message = JSON.parse(data.toString()) as AgentMessage;
      this.received.push(message);
      if (message.type === "auth") {
        const key = this.keys.get(`${message.stack}/${message.instance}`);
        const ok =
          key !== undefined &&
          verify(
            null,
            Buffer.from(authPayload(nonce, message.stack, message.instance)),
            createPublicKey(key),
            Buffer.from(message.signature, "base64"),
          );
        if (!ok) {
          send({ type: "refused", error: { code: "UNAUTHORIZED", message: "unknown agent" } });
          return socket.close(4401, "refused");
        }
        const session = randomBytes(16).toString("base64url");
        this.sessions.add(session);
        send({ type: "welcome", session, ...peerWelcome });
        let seq = 0;
        const timer = setInterval(() => {
          if (!this.silent) send({ type: "keepalive", seq: ++seq });
        }, peerWelcome.keepaliveMs);
        this.#timers.add(timer);
        socket.on("close", () => clearInterval(timer));
      }
      if (message.type === "report") {
        if (this.stored.has(message.run.seq)) this.duplicates += 1;
        else this.stored.set(message.run.seq, message.run);
        send({ type: "ack", seq: message.run.seq });
      }
    });
  }
}
