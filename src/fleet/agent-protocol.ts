import * as v from "valibot";
import type { Report } from "../core/report.ts";
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

// Validation of what an agent sends: the server trusts no frame it has not checked against these.

const count = v.pipe(v.number(), v.safeInteger(), v.minValue(0));
const finite = v.pipe(v.number(), v.finite());
const name = v.pipe(v.string(), v.minLength(1), v.maxLength(256));
const id = v.pipe(v.string(), v.minLength(1), v.maxLength(128));
const timestamp = v.pipe(
  v.string(),
  v.maxLength(64),
  v.check((text) => !Number.isNaN(Date.parse(text)), "a timestamp"),
);
const percent = v.pipe(v.number(), v.minValue(0), v.maxValue(100));

const outcomeErrorSchema = v.object({
  code: v.string(),
  message: v.string(),
  hint: v.exactOptional(v.string()),
});
const reportSchema = v.custom<Report>(
  (value) => typeof value === "object" && value !== null && !Array.isArray(value),
);

const hostOutcomeSchema = v.union([
  v.object({ status: v.picklist(["ok", "failed"]), report: reportSchema, durationMs: finite }),
  v.object({ status: v.picklist(["failed", "unreachable"]), error: outcomeErrorSchema, durationMs: finite }),
  v.object({ status: v.literal("skipped"), reason: v.string(), durationMs: v.literal(0) }),
]);

const hostPhaseSchema = v.variant("phase", [
  v.object({ phase: v.literal("waiting") }),
  v.object({ phase: v.literal("connecting"), attempt: v.exactOptional(count) }),
  v.object({ phase: v.literal("facts") }),
  v.object({ phase: v.literal("locked"), holder: v.string() }),
  v.object({ phase: v.literal("compiling") }),
  v.object({ phase: v.literal("converging"), done: count, total: count, changed: count, failed: count }),
  v.object({ phase: v.literal("done"), outcome: hostOutcomeSchema }),
]);

const agentRunReportSchema = v.object({
  seq: v.pipe(count, v.minValue(1)),
  kind: v.picklist(["drift", "job"]),
  mode: v.picklist(["enforce", "report"]),
  // recorded, not used: a loose check, so that a queued report never locks its agent out
  bundle: v.optional(v.pipe(v.string(), v.maxLength(256))),
  status: v.picklist(["ok", "failed", "drift"]),
  changed: count,
  failed: count,
  report: v.optional(v.unknown()),
  startedAt: timestamp,
  finishedAt: timestamp,
});

/** Every message an agent may send, checked field by field (unknown extra fields are dropped). */
export const agentMessageSchema = v.variant("type", [
  v.object({
    type: v.literal("auth"),
    stack: name,
    instance: name,
    signature: v.pipe(v.string(), v.maxLength(512)),
    agent: v.pipe(v.string(), v.maxLength(256)),
  }),
  v.object({ type: v.literal("keepalive"), seq: count }),
  v.object({ type: v.literal("job-phase"), id, phase: hostPhaseSchema }),
  v.object({ type: v.literal("job-done"), id, outcome: hostOutcomeSchema }),
  v.variant("ok", [
    v.object({ type: v.literal("result"), id, ok: v.literal(true), value: v.unknown() }),
    v.object({ type: v.literal("result"), id, ok: v.literal(false), error: outcomeErrorSchema }),
  ]),
  v.object({ type: v.literal("report"), run: agentRunReportSchema }),
  v.object({
    type: v.literal("metrics"),
    at: timestamp,
    cpu: percent,
    memory: percent,
    load: v.pipe(finite, v.minValue(0)),
  }),
]);

// the schema and the declared type describe the same messages
const _sameShape: (m: v.InferOutput<typeof agentMessageSchema>) => AgentMessage = (m) => m;
void _sameShape;

/**
 * Parses one text frame from an agent: the message, or why it is not one (a line for the audit log).
 *
 * @example parseAgentMessage('{"type":"keepalive","seq":3}') // { message: { type: "keepalive", seq: 3 } }
 */
export function parseAgentMessage(text: string): { message: AgentMessage } | { error: string } {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return { error: "a frame that is not JSON" };
  }
  const result = v.safeParse(agentMessageSchema, data);
  if (result.success) return { message: result.output };
  const issue = result.issues[0];
  const where = issue ? v.getDotPath(issue) : null;
  const type = typeof data === "object" && data !== null ? (data as { type?: unknown }).type : undefined;
  const what = typeof type === "string" ? `a "${type.slice(0, 40)}" message` : "a message";
  return {
    error: `${what} that breaks the protocol${where ? ` at ${where}` : ""}: ${issue?.message ?? "invalid"}`,
  };
}

/**
 * Host call arguments and results as JSON: every Uint8Array (writeFile's data, exec's input,
 * readFile's bytes) travels as `{ "$base64": "…" }`; `undefined` results travel as null.
 *
 * @example toWire(new Uint8Array([104, 105])) // { $base64: "aGk=" }
 */
export function toWire(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $base64: Buffer.from(value).toString("base64") };
  if (value === undefined) return null;
  if (Array.isArray(value)) return value.map(toWire);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = toWire(item);
    return out;
  }
  return value;
}

/** The inverse of toWire: `{ "$base64": "…" }` back to a Uint8Array (null stays null). */
export function fromWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromWire);
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    const [first] = entries;
    if (entries.length === 1 && first?.[0] === "$base64" && typeof first[1] === "string") {
      return new Uint8Array(Buffer.from(first[1], "base64"));
    }
    const out: Record<string, unknown> = {};
    for (const [key, item] of entries) out[key] = fromWire(item);
    return out;
  }
  return value;
}
