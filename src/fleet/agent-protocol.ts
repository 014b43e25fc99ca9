import type { DeployingApp, StackState } from "../stacks/state.ts";
import type { HostOutcome, HostPhase, MemberAttributes, OutcomeError, RemoteHost } from "./pipeline.ts";

// The agent channel: what the server and an agent say to each other over one long-lived
// WebSocket (`wss://SERVER/v1/agents/channel`, JSON text frames), and the seam the fleet pipeline
// and the deployment controller reach agent instances through (AgentLink). The server implements
// AgentLink over its connected agents; nothing below the server knows it exists.

/** How a stack instance is reached for its runs: SSH from the controller, or its own agent. */
export const instanceTransports = ["ssh", "agent"] as const;

/** One instance transport. */
export type InstanceTransport = (typeof instanceTransports)[number];

/** An agent-managed instance, as the fleet addresses it. */
export interface AgentTarget {
  stack: string;
  instance: string;
}

/**
 * One converge the server asks an agent to run on its own host, with the engine and a local host:
 * the bundle by content id (fetched once, cached on the host), the run list and attribute layers,
 * and the stack state seen from the instance (r.stack).
 */
export interface ConvergeJob {
  /** the bundle id (64 hex digits) the agent compiles from; GET /v1/bundles/:id when not cached */
  bundle: string;
  runList: string[];
  attributes: MemberAttributes[];
  /** r.stack: the whole state, seen from `instance` */
  stack?:
    | {
        state: StackState;
        instance: string;
        event: string;
        version: number;
        deploying: DeployingApp[];
      }
    | undefined;
  mode: "apply" | "plan";
  /** what runs, for the run lock's holder: "galley run configure", "galley deploy web" */
  command: string;
  /** how long to wait for another run's lock on the host (ms) */
  waitMs?: number | undefined;
  /** values of the run's secrets: the agent registers them, so that its reports and logs hide them */
  secrets: string[];
  /** true: the agent keeps this job and repeats it every run interval (drift runs) */
  periodic?: boolean | undefined;
}

/** One queued report of an agent's own run (a drift run), delivered once whatever the outages. */
export interface AgentRunReport {
  /** the agent's counter, increasing, never reused for one enrollment: the server acknowledges by it */
  seq: number;
  kind: "drift" | "job";
  mode: "enforce" | "report";
  bundle?: string | undefined;
  status: "ok" | "failed" | "drift";
  changed: number;
  failed: number;
  report?: unknown;
  startedAt: string;
  finishedAt: string;
}

/** Messages the server sends. */
export type ServerMessage =
  /** first frame after the upgrade: sign `nonce` to authenticate */
  | { type: "hello"; nonce: string; server: string }
  /** authenticated; `session` authorizes the agent's HTTPS calls (bundles) while the channel is open */
  | {
      type: "welcome";
      session: string;
      keepaliveMs: number;
      runIntervalMs: number;
      splayMs: number;
      runMode: "enforce" | "report";
      metricsMs: number;
    }
  | { type: "refused"; error: OutcomeError }
  | { type: "keepalive"; seq: number }
  | { type: "job"; id: string; job: ConvergeJob }
  /** cancel a running job (the deployment was interrupted) */
  | { type: "cancel"; id: string }
  /** a Host call for the controller's small reads: exec, readFile, writeFile, stat, facts */
  | { type: "call"; id: string; method: HostMethod; args: unknown[] }
  | { type: "ack"; seq: number };

/** Messages an agent sends. */
export type AgentMessage =
  /** answers hello: an ed25519 signature (base64) of authPayload(nonce, stack, instance) */
  | { type: "auth"; stack: string; instance: string; signature: string; agent: string }
  | { type: "keepalive"; seq: number }
  | { type: "job-phase"; id: string; phase: HostPhase }
  | { type: "job-done"; id: string; outcome: HostOutcome }
  | { type: "result"; id: string; ok: true; value: unknown }
  | { type: "result"; id: string; ok: false; error: OutcomeError }
  | { type: "report"; run: AgentRunReport }
  | { type: "metrics"; at: string; cpu: number; memory: number; load: number };

/** The Host methods the server may call through an agent (binary data travels as base64). */
export const hostMethods = ["exec", "readFile", "writeFile", "stat", "facts"] as const;

/** One of them. */
export type HostMethod = (typeof hostMethods)[number];

/** What an agent signs to authenticate: binds the server's nonce to the instance it speaks for. */
export function authPayload(nonce: string, stack: string, instance: string): string {
  return `galley-agent-auth\n${nonce}\n${stack}\n${instance}`;
}

/**
 * How the fleet pipeline and the deployment controller reach agent instances. The server
 * implements it over its connected agents and hands it to runs (FleetRunOptions.agents,
 * StackContext.agents); a run without one cannot reach an agent instance (HOST_UNREACHABLE with a
 * hint to run it through the server).
 */
export interface AgentLink {
  /** runs a converge job on the instance's host; an agent not connected (or lost mid-job) is `unreachable` */
  converge(
    target: AgentTarget,
    job: ConvergeJob,
    options: { signal?: AbortSignal | undefined; onPhase?: ((phase: HostPhase) => void) | undefined },
  ): Promise<HostOutcome>;
  /** a Host over the agent's channel, for a deployment's small reads and commands */
  connect(target: AgentTarget, options?: { signal?: AbortSignal | undefined }): Promise<RemoteHost>;
  /** whether the instance's agent is connected now */
  connected(target: AgentTarget): boolean;
}
