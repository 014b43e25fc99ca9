import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { createServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import * as path from "node:path";
import { createAdaptorServer } from "@hono/node-server";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { openSqliteStore, storeFile } from "../store/sqlite.ts";
import { createApp, type Registrar } from "./app.ts";
import { mintToken } from "./auth.ts";
import { type AgentHub, defaultSettings, type ServerContext, type ServerSettings } from "./context.ts";
import type { ServerApp } from "./openapi.ts";
import { coreRoutes } from "./routes/core.ts";
import { register as sessionRoutes } from "./routes/session.ts";
import { ensureTls, serverNames, writePrivate } from "./tls.ts";

// `galley server`: one process that opens the kitchen's store, makes or loads its TLS files, mints
// the first admin token, and serves the HTTPS API (and, through the hub, the agent channel).

/** How to start a server. */
export interface StartServerOptions {
  kitchen: string;
  /** default <kitchen>/.galley/server */
  dataDir?: string | undefined;
  /** ADDR:PORT (default 127.0.0.1:0: a free port on the loopback) */
  listen?: string | undefined;
  settings?: Partial<ServerSettings> | undefined;
  /** the agent hub (task B2's createHub); without one, agent instances are unreachable */
  hub?: ((ctx: ServerContext) => AgentHub) | undefined;
  /**
   * what runs beside the API once the server listens (the automation's loops): started in order,
   * stopped in reverse order first thing on close
   */
  services?: ((ctx: ServerContext) => ServerService | Promise<ServerService>)[] | undefined;
  /** the API areas served besides the core (tokens, users, web sessions, audit, CA) */
  routes?: Registrar[] | undefined;
  /** extra names for the server certificate (--san) */
  sans?: string[] | undefined;
  /**
   * the URL agents reach the server at, when not its own (a bridge's gateway: https://10.0.0.1:8443);
   * without a port, the server's; its host joins the certificate's names
   */
  agentUrl?: string | undefined;
  log?: ((line: string) => void) | undefined;
}

/** Something that runs beside the API for the server's life. */
export interface ServerService {
  stop(): Promise<void>;
}

/** A running server. */
export interface RunningServer {
  url: string;
  port: number;
  caPem: string;
  caFingerprint: string;
  /** where the first admin token's secret was written (it exists only if this server minted it) */
  adminTokenFile: string;
  ctx: ServerContext;
  app: ServerApp;
  server: HttpsServer;
  close(): Promise<void>;
}

/** Where a kitchen's server keeps its TLS files and first admin token by default. */
export function defaultDataDir(kitchen: string): string {
  return path.join(kitchen, ".galley", "server");
}

/** Splits ADDR:PORT ([v6]:PORT, :PORT) into host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(listen.trim());
  const port = Number(match?.[3]);
  if (match === null || port > 65535)
    throw new GalleyError("ARGS_INVALID", `--listen ${listen} is not ADDR:PORT`, {
      hint: "e.g. --listen 0.0.0.0:8443, --listen [::1]:8443",
    });
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port };
}

/**
 * Starts the server: store, TLS, the first admin token, HTTPS.
 *
 * @example const server = await startServer({ kitchen, listen: "127.0.0.1:0" }); … await server.close()
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const kitchen = path.resolve(options.kitchen);
  const dataDir = path.resolve(options.dataDir ?? defaultDataDir(kitchen));
  const { host, port } = parseListen(options.listen ?? "127.0.0.1:0");
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const agentHost = options.agentUrl === undefined ? undefined : agentUrlOf(options.agentUrl, 0).hostname;
  const sans = [...(options.sans ?? []), ...(agentHost ? [agentHost.replace(/^\[|\]$/g, "")] : [])];
  const tls = await ensureTls(dataDir, serverNames(host, sans));
  const store = openSqliteStore(storeFile(kitchen));
  const ctx: ServerContext = {
    kitchen,
    dataDir,
    store,
    settings: { ...defaultSettings, ...options.settings },
    agents: noHub,
    log,
    id: `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`,
  };
  let server: HttpsServer | undefined;
  const services: ServerService[] = [];
  try {
    const adminTokenFile = path.join(dataDir, "admin.token");
    if ((await store.listTokens()).length === 0) {
      const { secret } = await mintToken(store, { name: "admin", grants: [{ stack: "*", role: "admin" }] });
      writePrivate(adminTokenFile, `${secret}\n`);
      log(`galley server: the first admin token is in ${adminTokenFile}`);
    } else if (!existsSync(adminTokenFile)) {
      log("galley server: no admin.token file; use `galley token create` for a new token");
    }
    if (options.hub !== undefined) ctx.agents = options.hub(ctx);
    const app = createApp(ctx, [coreRoutes(tls.caPem), sessionRoutes, ...(options.routes ?? [])]);
    server = createAdaptorServer({
      fetch: app.fetch,
      createServer,
      serverOptions: { key: tls.key, cert: tls.cert, minVersion: "TLSv1.2" },
    }) as HttpsServer;
    // a client that sends its request slowly (or never) is dropped, not waited for
    server.headersTimeout = 20_000;
    server.requestTimeout = 60_000;
    if (options.hub !== undefined) ctx.agents.attach(server);
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(port, host, () => {
        listening.off("error", reject);
        resolve();
      });
    });
    for (const start of options.services ?? []) services.push(await start(ctx));
    const bound = (server.address() as AddressInfo).port;
    const urlHost =
      host === "0.0.0.0" || host === "::" ? hostname() : host.includes(":") ? `[${host}]` : host;
    ctx.agentUrl =
      options.agentUrl === undefined
        ? `https://${urlHost}:${bound}`
        : agentUrlOf(options.agentUrl, bound).href.replace(/\/$/, "");
    let closed: Promise<void> | undefined;
    return {
      url: `https://${urlHost}:${bound}`,
      port: bound,
      caPem: tls.caPem,
      caFingerprint: tls.caFingerprint,
      adminTokenFile,
      ctx,
      app,
      server: listening,
      close: () => {
        closed ??= closeAll(ctx, listening, services, options.hub !== undefined);
        return closed;
      },
    };
  } catch (error) {
    for (const service of services.reverse()) await service.stop().catch(() => {});
    if (options.hub !== undefined && ctx.agents !== noHub) await ctx.agents.close().catch(() => {});
    if (server !== undefined) server.close();
    await store.close();
    if (error instanceof Error && "code" in error && error.code === "EADDRINUSE")
      throw new GalleyError("ARGS_INVALID", `--listen ${host}:${port}: the address is in use`, {
        hint: "choose another port, or stop the process that holds it",
      });
    throw error;
  }
}

async function closeAll(
  ctx: ServerContext,
  server: HttpsServer,
  services: ServerService[],
  hasHub: boolean,
): Promise<void> {
  for (const service of [...services].reverse()) {
    try {
      await service.stop();
    } catch (error) {
      ctx.log(`galley server: a service failed to stop: ${errorMessage(error)}`);
    }
  }
  if (hasHub) await ctx.agents.close();
  const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await stopped;
  await ctx.store.close();
}

function unreachable(): never {
  throw new GalleyError("HOST_UNREACHABLE", "this server has no agent hub: agent instances are unreachable", {
    hint: "start the server with its agent hub",
  });
}

/** The server's agents before a hub is given: none connected, none reachable. */
const noHub: AgentHub = {
  converge: async () => unreachable(),
  connect: async () => unreachable(),
  connected: () => false,
  attach: () => {},
  connections: () => [],
  on: () => () => {},
  close: async () => {},
};

/** The agents' URL of the server: `https://HOST[:PORT]`, the server's port when none is given. */
function agentUrlOf(text: string, port: number): URL {
  let url: URL;
  try {
    url = new URL(text.includes("://") ? text : `https://${text}`);
  } catch {
    url = new URL("https://invalid.invalid");
  }
  if (
    url.protocol !== "https:" ||
    url.hostname === "invalid.invalid" ||
    (url.pathname !== "/" && url.pathname !== "")
  )
    throw new GalleyError("ARGS_INVALID", `--agent-url ${text} is not https://HOST[:PORT]`, {
      hint: "the address agents reach this server at, e.g. --agent-url https://10.0.0.1:8443",
    });
  if (url.port === "" && port !== 0) url.port = String(port);
  return url;
}
