import { EventEmitter } from "node:events";
import { type KeyObject, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import * as os from "node:os";
import WebSocket from "ws";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { Interrupted } from "../core/interrupt.ts";
import { processSecrets, Secrets } from "../core/secrets.ts";
import {
  type AgentMessage,
  type AgentRunReport,
  authPayload,
  type ConvergeJob,
  type ServerMessage,
} from "../fleet/agent-protocol.ts";
import type { HostOutcome } from "../fleet/pipeline.ts";
import { LocalHost } from "../hosts/local.ts";
import { defaultStateDir as hostDefaultStateDir } from "../hosts/statedir.ts";
import { type Backoff, defaultBackoff, reconnectDelay } from "./backoff.ts";
import { BundleCache } from "./bundles.ts";
import { answerCall } from "./calls.ts";
import type { AgentConfig } from "./config.ts";
import { agentRequest, answerError } from "./https.ts";
import { runConvergeJob } from "./job.ts";
import { MetricsSampler } from "./metrics.ts";
import { type DriftSettings, nextDriftDelay, readPeriodic, writePeriodic } from "./periodic.ts";
import { ReportQueue } from "./queue.ts";

// `galley agent run`: one WebSocket to the server, authenticated with the agent's own key; jobs and
// host calls come down, phases, outcomes, queued drift reports and metrics go up. The agent keeps
// converging on its interval while the server is away, and comes back by itself.

const version = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      version?: string;
    };
    return `galley ${pkg.version ?? "?"}`;
  } catch {
    return "galley";
  }
})();

/** What an agent needs to run. */
export interface AgentOptions {
  config: AgentConfig;
  key: KeyObject;
  /** the agent's own state: bundles/, queue/, periodic.json, seq */
  stateDir: string;
  /** the host's Galley state dir (run lock, ledger): default /var/lib/galley as root */
  hostStateDir?: string | undefined;
  /** one line per state change (default: stderr) */
  log?: ((line: string) => void) | undefined;
  backoff?: Backoff | undefined;
  /** keepalives missed before the connection counts as lost (the welcome does not say; default 3) */
  missedKeepalives?: number | undefined;
  /** how long the TLS + WebSocket handshake may take (default 15 s) */
  handshakeTimeoutMs?: number | undefined;
  random?: (() => number) | undefined;
}

/** The server's settings from its last welcome. */
interface Session {
  id: string;
  keepaliveMs: number;
  metricsMs: number;
}

/**
 * A running agent. Events: `connected` (session), `lost` (why), `job-done` (id, outcome),
 * `drift` (the queued AgentRunReport), `acked` (seq), `refused` (message).
 *
 * @example const agent = new Agent({ config, key, stateDir }); await agent.start(); … await agent.stop();
 */
export class Agent extends EventEmitter {
  readonly #options: AgentOptions;
  readonly #queue: ReportQueue;
  readonly #bundles: BundleCache;
  readonly #host: LocalHost;
  readonly #hostStateDir: string;
  readonly #log: (line: string) => void;
  readonly #random: () => number;
  #socket: WebSocket | undefined;
  #session: Session | undefined;
  #timers: NodeJS.Timeout[] = [];
  #reconnectTimer: NodeJS.Timeout | undefined;
  #driftTimer: NodeJS.Timeout | undefined;
  #attempt = 0;
  #refused = false;
  #stopping = false;
  #keepaliveSeq = 0;
  #drift: DriftSettings | undefined;
  readonly #jobs = new Map<string, AbortController>();
  // jobs and drift runs one at a time: the engine's run lock would serialize them anyway
  #runs: Promise<unknown> = Promise.resolve();
  readonly #running = new Set<Promise<unknown>>();
  readonly #metrics = new MetricsSampler();

  constructor(options: AgentOptions) {
    super();
    this.#options = options;
    this.#queue = new ReportQueue(options.stateDir);
    this.#bundles = new BundleCache(options.stateDir);
    this.#host = new LocalHost();
    this.#hostStateDir = options.hostStateDir ?? hostDefaultStateDir();
    this.#log = options.log ?? ((line) => process.stderr.write(`galley agent: ${line}\n`));
    this.#random = options.random ?? Math.random;
  }

  /** the stack and instance this agent speaks for */
  get target(): string {
    return `${this.#options.config.stack}/${this.#options.config.instance}`;
  }

  /** whether the server welcomed this agent on the connection open now */
  get connected(): boolean {
    return this.#session !== undefined;
  }

  /** the report queue (reports not yet acknowledged) */
  get queue(): ReportQueue {
    return this.#queue;
  }

  /** the bundle cache */
  get bundles(): BundleCache {
    return this.#bundles;
  }

  /** Starts: schedules the drift runs (kept from the last run) and connects. */
  async start(): Promise<void> {
    this.#drift = (await readPeriodic(this.#options.stateDir)).settings;
    await this.#metrics.start();
    this.#scheduleDrift();
    this.#connect();
  }

  /**
   * `galley agent run --once`: one drift run now (when the server gave a periodic job), then
   * connects until the queue is delivered (or `deadlineMs` passed), then stops. Whether the queue
   * was delivered.
   */
  async runOnce(deadlineMs = 60_000): Promise<boolean> {
    this.#drift = (await readPeriodic(this.#options.stateDir)).settings;
    await this.driftRun();
    const delivered = new Promise<boolean>((resolve) => {
      const check = async () => {
        if (this.connected && (await this.#queue.pending()).length === 0) resolve(true);
      };
      this.on("connected", () => void check());
      this.on("acked", () => void check());
      setTimeout(() => resolve(false), deadlineMs).unref();
    });
    this.#connect();
    const ok = await delivered;
    await this.stop();
    return ok;
  }

  /** Stops: aborts the running job (the engine stops between resources), closes the socket. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#reconnectTimer);
    clearTimeout(this.#driftTimer);
    for (const controller of this.#jobs.values()) controller.abort(new Interrupted("SIGTERM"));
    await Promise.allSettled([...this.#running]);
    this.#endSession();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.close(1001, "agent stopping");
      const timer = setTimeout(() => socket.terminate(), 2_000);
      await closed;
      clearTimeout(timer);
    }
  }

  /** Runs one drift run now (what the interval timer runs), queues its report and sends it when connected. */
  driftRun(): Promise<AgentRunReport | undefined> {
    return this.#serial(() => this.#driftRun());
  }

  #connect(): void {
    if (this.#stopping) return;
    const { server, ca } = this.#options.config;
    const url = `${server.replace(/^http/, "ws")}/v1/agents/channel`;
    // ca: the pinned CA only; the host name is checked against the certificate (ws sets servername)
    const socket = new WebSocket(url, {
      ca,
      handshakeTimeout: this.#options.handshakeTimeoutMs ?? 15_000,
      perMessageDeflate: false,
    });
    this.#socket = socket;
    let why = "closed";
    socket.on("message", (data) => {
      this.#lastFrame = Date.now();
      let message: ServerMessage;
      try {
        message = JSON.parse(data.toString()) as ServerMessage;
      } catch {
        return this.#log(`ignored a frame from the server that is not JSON`);
      }
      this.#onMessage(socket, message).catch((error) =>
        this.#log(`error handling ${message.type}: ${errorMessage(error)}`),
      );
    });
    socket.on("error", (error) => {
      why = errorMessage(error);
    });
    socket.on("close", (code, reason) => {
      if (why === "closed" && reason.length > 0) why = `closed by the server (${code}: ${reason.toString()})`;
      else if (why === "closed") why = `closed (${code})`;
      const wasConnected = this.#session !== undefined;
      this.#endSession();
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      if (wasConnected) {
        this.#log(`lost the server: ${this.#lostReason ?? why}`);
        this.emit("lost", this.#lostReason ?? why);
      } else if (!this.#refused) this.#log(`cannot connect to ${server}: ${why}`);
      this.#lostReason = undefined;
      this.#scheduleReconnect();
    });
  }

  #lastFrame = 0;
  #lostReason: string | undefined;

  #scheduleReconnect(): void {
    if (this.#stopping) return;
    const backoff = this.#options.backoff ?? defaultBackoff;
    const delay = this.#refused ? backoff.maxMs : reconnectDelay(this.#attempt, backoff, this.#random);
    this.#attempt += 1;
    this.#refused = false;
    this.#reconnectTimer = setTimeout(() => this.#connect(), delay);
  }

  async #onMessage(socket: WebSocket, message: ServerMessage): Promise<void> {
    const send = (reply: AgentMessage) => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(reply));
    };
    switch (message.type) {
      case "hello": {
        const { stack, instance } = this.#options.config;
        const payload = Buffer.from(authPayload(message.nonce, stack, instance));
        const signature = sign(null, payload, this.#options.key).toString("base64");
        return send({ type: "auth", stack, instance, signature, agent: `${version} on ${os.hostname()}` });
      }
      case "welcome":
        return this.#welcome(socket, message, send);
      case "refused":
        this.#refused = true;
        this.#log(
          `the server refused this agent: ${message.error.message}${message.error.hint ? ` (${message.error.hint})` : ""}`,
        );
        this.emit("refused", message.error.message);
        return;
      case "keepalive":
        return;
      case "ack":
        await this.#queue.ack(message.seq);
        this.emit("acked", message.seq);
        return;
      case "job":
        return this.#job(message.id, message.job, send);
      case "cancel":
        this.#jobs.get(message.id)?.abort(new Interrupted("SIGTERM"));
        return;
      case "call": {
        const secrets = new Secrets(processSecrets);
        return send(await answerCall(this.#host, message.id, message.method, message.args, secrets));
      }
    }
  }

  async #welcome(
    socket: WebSocket,
    message: Extract<ServerMessage, { type: "welcome" }>,
    send: (reply: AgentMessage) => void,
  ): Promise<void> {
    this.#session = { id: message.session, keepaliveMs: message.keepaliveMs, metricsMs: message.metricsMs };
    this.#attempt = 0;
    this.#log(`connected to ${this.#options.config.server} as ${this.target}`);
    const missed = this.#options.missedKeepalives ?? 3;
    this.#timers.push(
      setInterval(() => send({ type: "keepalive", seq: ++this.#keepaliveSeq }), message.keepaliveMs),
      // silence: no frame at all from the server for `missed` keepalive intervals
      setInterval(() => {
        if (Date.now() - this.#lastFrame <= missed * message.keepaliveMs) return;
        this.#lostReason = `no frame from the server for ${missed} keepalives (${(missed * message.keepaliveMs) / 1000} s)`;
        socket.terminate();
      }, message.keepaliveMs),
      setInterval(() => {
        this.#metrics.sample().then(
          (m) => send({ type: "metrics", at: new Date().toISOString(), ...m }),
          () => {},
        );
      }, message.metricsMs),
    );
    const drift: DriftSettings = {
      runIntervalMs: message.runIntervalMs,
      splayMs: message.splayMs,
      runMode: message.runMode,
    };
    if (JSON.stringify(drift) !== JSON.stringify(this.#drift)) {
      this.#drift = drift;
      const kept = await readPeriodic(this.#options.stateDir);
      await writePeriodic(this.#options.stateDir, { ...kept, settings: drift });
      this.#scheduleDrift();
    }
    this.emit("connected", message.session);
    // the queue, oldest first: what the server stored before (a lost ack) it acknowledges again
    for (const run of await this.#queue.pending()) send({ type: "report", run });
  }

  #endSession(): void {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    this.#session = undefined;
  }

  async #job(id: string, job: ConvergeJob, send: (reply: AgentMessage) => void): Promise<void> {
    if (job.periodic) {
      const kept = await readPeriodic(this.#options.stateDir);
      await writePeriodic(this.#options.stateDir, { ...kept, job });
    }
    const controller = new AbortController();
    this.#jobs.set(id, controller);
    const outcome = await this.#serial(async () => {
      this.#log(`job ${id} (${job.command}, ${job.mode}) starts`);
      const result = await this.#converge(job, controller.signal, (phase) =>
        send({ type: "job-phase", id, phase }),
      );
      this.#log(`job ${id} ended: ${describeOutcome(result)}`);
      return result;
    }).finally(() => this.#jobs.delete(id));
    // a channel lost meanwhile: the server already counts the job unreachable
    send({ type: "job-done", id, outcome });
    this.emit("job-done", id, outcome);
  }

  #converge(
    job: ConvergeJob,
    signal: AbortSignal,
    onPhase?: (phase: Parameters<NonNullable<Parameters<typeof runConvergeJob>[1]["onPhase"]>>[0]) => void,
  ): Promise<HostOutcome> {
    return runConvergeJob(job, {
      bundles: this.#bundles,
      fetch: (id) => this.#fetchBundle(id),
      hostStateDir: this.#hostStateDir,
      signal,
      onPhase,
    });
  }

  async #fetchBundle(id: string): Promise<Uint8Array> {
    const session = this.#session;
    if (!session)
      throw new GalleyError(
        "HOST_UNREACHABLE",
        `bundle ${id} is not cached and the server is not connected`,
        {
          hint: "the next run after the agent reconnects fetches it",
        },
      );
    const { server, ca } = this.#options.config;
    const response = await agentRequest(`${server}/v1/bundles/${id}`, {
      ca,
      headers: { authorization: `Agent ${session.id}` },
      timeoutMs: 120_000,
    });
    if (response.status !== 200) {
      const error = answerError(response);
      throw new GalleyError("BUNDLE_INVALID", `the server did not give bundle ${id}: ${error.message}`, {
        hint: error.hint ?? "check the server's log",
      });
    }
    return response.body;
  }

  #scheduleDrift(): void {
    clearTimeout(this.#driftTimer);
    if (this.#stopping || !this.#drift) return;
    const delay = nextDriftDelay(this.#drift, this.#random);
    this.#driftTimer = setTimeout(() => {
      this.driftRun()
        .catch((error) => this.#log(`drift run failed: ${errorMessage(error)}`))
        .finally(() => this.#scheduleDrift());
    }, delay);
  }

  async #driftRun(): Promise<AgentRunReport | undefined> {
    const { job, settings } = await readPeriodic(this.#options.stateDir);
    if (!job || this.#stopping) return undefined;
    const mode = settings.runMode;
    const startedAt = new Date().toISOString();
    this.#log(`drift run (${mode}) starts`);
    const controller = new AbortController();
    const key = `drift-${startedAt}`;
    this.#jobs.set(key, controller);
    const outcome = await this.#converge(
      { ...job, mode: mode === "enforce" ? "apply" : "plan", command: `galley agent run (drift, ${mode})` },
      controller.signal,
    ).finally(() => this.#jobs.delete(key));
    const report = "report" in outcome ? outcome.report : undefined;
    const changed = report ? report.summary.changed + (mode === "report" ? report.summary.pending : 0) : 0;
    const failed = report ? report.summary.failed : 0;
    const status = outcome.status !== "ok" ? "failed" : mode === "report" && changed > 0 ? "drift" : "ok";
    const run = await this.#queue.enqueue({
      kind: "drift",
      mode,
      bundle: job.bundle,
      status,
      changed,
      failed,
      report: report ?? ("error" in outcome ? { error: outcome.error } : undefined),
      startedAt,
      finishedAt: new Date().toISOString(),
    });
    this.#log(`drift run ${run.seq} ended: ${status}, ${changed} changed, ${failed} failed`);
    this.emit("drift", run);
    const socket = this.#socket;
    if (this.#session && socket?.readyState === WebSocket.OPEN)
      socket.send(JSON.stringify({ type: "report", run }));
    return run;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#runs.then(work, work);
    this.#runs = next.catch(() => {});
    this.#running.add(next);
    next.finally(() => this.#running.delete(next)).catch(() => {});
    return next;
  }
}

function describeOutcome(outcome: HostOutcome): string {
  if ("report" in outcome) {
    const s = outcome.report.summary;
    return `${outcome.status}, ${s.changed} changed, ${s.failed} failed`;
  }
  if ("error" in outcome) return `${outcome.status}: ${outcome.error.message}`;
  return `${outcome.status}: ${outcome.reason}`;
}
