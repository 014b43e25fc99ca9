import type { Server as HttpsServer } from "node:https";
import type { AgentLink, AgentTarget } from "../fleet/agent-protocol.ts";
import type { Grant, Store } from "../store/store.ts";

// What every part of the server shares: the kitchen it serves, its store, its settings and the
// agents connected to it. Routes (src/server/routes/*.ts) and the automation get it as `ctx`.

/** The server's timings and run policy. */
export interface ServerSettings {
  keepaliveMs: number;
  /** silent for this many keepalives: connection_lost */
  missedKeepalives: number;
  runIntervalMs: number;
  splayMs: number;
  runMode: "enforce" | "report";
  metricsMs: number;
  /** time- and load-based evaluation tick */
  schedulerMs: number;
  enrollmentTtlMs: number;
}

/** The settings of a server started without any. */
export const defaultSettings: ServerSettings = {
  keepaliveMs: 30_000,
  missedKeepalives: 3,
  runIntervalMs: 30 * 60_000,
  splayMs: 5 * 60_000,
  runMode: "enforce",
  metricsMs: 60_000,
  schedulerMs: 60_000,
  enrollmentTtlMs: 24 * 60 * 60_000,
};

/** One connected agent. */
export interface AgentConnection {
  stack: string;
  instance: string;
  generation: number;
  connectedAt: string;
  lastSeenAt: string;
  remote: string;
}

/** The server's agents (task B2 implements it in src/server/agents/hub.ts). */
export interface AgentHub extends AgentLink {
  /** serves the channel on this server's upgrade requests to /v1/agents/channel */
  attach(server: HttpsServer): void;
  /** the agents connected now */
  connections(): AgentConnection[];
  /** an agent authenticated ("connected") or went silent / closed ("lost", with why) */
  on(event: "connected" | "lost", listener: (target: AgentTarget, reason: string) => void): () => void;
  close(): Promise<void>;
  /**
   * The agent an open channel's session belongs to (`Authorization: Agent <session>`), or
   * undefined: how routes declared with `auth: "agent"` authenticate.
   */
  agentForSession?(session: string): AgentTarget | undefined;
  /**
   * whether the instance's agent may download the bundle `id`: only bundles of jobs sent to it
   * (one agent cannot read another stack's cookbooks by guessing or learning an id)
   */
  bundleAllowed?(target: AgentTarget, id: string): boolean;
}

/** Everything the server's parts share. */
export interface ServerContext {
  /** the kitchen served (stacks/, cookbooks) */
  kitchen: string;
  /** default <kitchen>/.galley/server: ca/, tls/, admin token file */
  dataDir: string;
  /** the kitchen's store (<kitchen>/.galley/galley.db) */
  store: Store;
  settings: ServerSettings;
  agents: AgentHub;
  log(line: string): void;
  /** a name for this server process (leases' holder) */
  id: string;
  /**
   * the URL agents reach this server at (`galley server --agent-url`; default: its own URL), what
   * an agent instance set up by the server is enrolled with; known once the server listens
   */
  agentUrl?: string | undefined;
}

/** The web session a request came with (its cookie): what CSRF checks compare against. */
export interface WebSession {
  /** sha256 hex of the cookie's secret (the store's key) */
  hash: string;
  csrf: string;
  expiresAt: string;
}

/**
 * Who makes a request: an admin token (by its bearer header, or a web session opened with it), a
 * user account (a web session), or an agent over its channel's session.
 */
export type Actor =
  | { kind: "token"; id: string; name: string; grants: Grant[]; session?: WebSession | undefined }
  | { kind: "user"; name: string; grants: Grant[]; session: WebSession }
  | { kind: "agent"; stack: string; instance: string };
