import { randomUUID } from "node:crypto";
import type { Server as HttpsServer } from "node:https";
import { errorMessage, GalleyError } from "../../core/errors.ts";
import type { AgentMessage, AgentRunReport, AgentTarget, ConvergeJob } from "../../fleet/agent-protocol.ts";
import type { HostOutcome, HostPhase, RemoteHost } from "../../fleet/pipeline.ts";
import type { AgentConnection, AgentHub, ServerContext } from "../context.ts";
import { AgentChannel, type AgentSession, type ChannelStore } from "./channel.ts";
import { agentHost, type PendingCall } from "./remote-host.ts";

// The server's AgentLink: converge jobs and host calls over the agents' channels, run reports and
// metrics into the store, and connection events for the healer.

/** What the hub needs of the store (the kitchen's Store has all of it). */
export interface HubStore extends ChannelStore {
  recordAgentRun(
    run: AgentRunReport & { stack: string; instance: string; generation: number },
  ): Promise<"recorded" | "duplicate">;
  recordMetrics(sample: {
    stack: string;
    instance: string;
    at: string;
    cpu: number;
    memory: number;
    load: number;
  }): Promise<void>;
}

/** What the hub needs of the server: its context without the hub. */
export type HubContext = Pick<ServerContext, "settings" | "log" | "id"> & {
  store: HubStore;
  /** how long a new connection has to authenticate (default 10 s) */
  authTimeoutMs?: number | undefined;
};

/** The server's hub, with what the agent routes need beyond AgentHub. */
export interface ServerAgentHub extends AgentHub {
  /** the agent a bundle download's `Authorization: Agent <session>` belongs to, while it is connected */
  agentForSession(session: string): AgentTarget | undefined;
  /** closes the instance's channel when its generation is older than `generation` (a re-enrollment retires the old key); true when it did */
  retire(target: AgentTarget, generation: number, reason: string): boolean;
}

/** How long a cancelled job waits for the agent's job-done before it counts as unreachable. */
export const cancelWaitMs = 5000;

/** How many of the bundles sent to one instance its agent may still download. */
export const rememberedBundles = 20;

interface Job {
  target: AgentTarget;
  onPhase: ((phase: HostPhase) => void) | undefined;
  done(outcome: HostOutcome): void;
  lost(reason: string): void;
}

interface Live {
  session: AgentSession;
  jobs: Map<string, Job>;
  calls: Map<string, PendingCall>;
  /** every job and call id ever sent on this connection: a late answer is dropped, a forged one refused */
  issued: Set<string>;
  /** hosts connected through this session: told when it goes */
  hosts: Set<(reason: string) => void>;
}

/**
 * The hub over this server's agent channels.
 *
 * @example const hub = createAgentHub(ctx); hub.attach(httpsServer); await hub.converge({ stack: "prod", instance: "web1" }, job, {})
 */
export function createAgentHub(ctx: HubContext): ServerAgentHub {
  const live = new Map<string, Live>();
  const bySession = new Map<string, Live>();
  const listeners = { connected: new Set<Listener>(), lost: new Set<Listener>() };
  const servers = new Set<HttpsServer>();
  let closing = false;
  const key = (target: AgentTarget) => `${target.stack}/${target.instance}`;
  // the bundles each instance was sent in a job, newest last: what its agent may download
  const sentBundles = new Map<string, string[]>();
  const rememberBundle = (target: AgentTarget, id: string) => {
    const list = (sentBundles.get(key(target)) ?? []).filter((b) => b !== id);
    list.push(id);
    sentBundles.set(key(target), list.slice(-rememberedBundles));
  };
  const emit = (event: keyof typeof listeners, target: AgentTarget, reason: string) => {
    if (closing) return;
    for (const listener of listeners[event]) {
      try {
        listener(target, reason);
      } catch (error) {
        ctx.log(`agent hub: a "${event}" listener failed: ${errorMessage(error)}`);
      }
    }
  };

  const channel = new AgentChannel(
    { store: ctx.store, settings: ctx.settings, log: ctx.log, id: ctx.id, authTimeoutMs: ctx.authTimeoutMs },
    {
      authenticated(session) {
        const previous = live.get(session.name);
        const entry: Live = {
          session,
          jobs: new Map(),
          calls: new Map(),
          issued: new Set(),
          hosts: new Set(),
        };
        live.set(session.name, entry);
        bySession.set(session.session, entry);
        if (previous) previous.session.close("replaced by a newer connection");
        ctx.log(`agent ${session.name}: connected from ${session.remote} (generation ${session.generation})`);
        emit("connected", session.target, `connected from ${session.remote}`);
      },
      message(session, message) {
        const entry = bySession.get(session.session);
        if (entry) handle(entry, message);
      },
      closed(session, reason) {
        const entry = bySession.get(session.session);
        bySession.delete(session.session);
        if (!entry) return;
        const why = `the agent of ${session.target.instance} was lost: ${reason}`;
        for (const job of entry.jobs.values()) job.lost(why);
        for (const call of entry.calls.values()) call.lost(why);
        for (const host of entry.hosts) host(why);
        entry.jobs.clear();
        entry.calls.clear();
        if (live.get(session.name) !== entry) return; // replaced: the instance is still connected
        live.delete(session.name);
        ctx.log(`agent ${session.name}: lost: ${reason}`);
        emit("lost", session.target, reason);
      },
    },
  );

  function handle(entry: Live, message: AgentMessage): void {
    const { session } = entry;
    switch (message.type) {
      case "job-phase":
      case "job-done": {
        const job = entry.jobs.get(message.id);
        if (!job) {
          if (!entry.issued.has(message.id))
            session.refuse(`a "${message.type}" for job ${message.id}, not one of its own`);
          return;
        }
        if (message.type === "job-phase") {
          try {
            job.onPhase?.(message.phase);
          } catch (error) {
            ctx.log(`agent ${session.name}: a job's phase listener failed: ${errorMessage(error)}`);
          }
        } else {
          entry.jobs.delete(message.id);
          job.done(message.outcome);
        }
        return;
      }
      case "result": {
        const call = entry.calls.get(message.id);
        if (!call) {
          if (!entry.issued.has(message.id))
            session.refuse(`a result for call ${message.id}, not one of its own`);
          return;
        }
        entry.calls.delete(message.id);
        call.settle(message);
        return;
      }
      case "report": {
        const { stack, instance } = session.target;
        ctx.store.recordAgentRun({ ...message.run, stack, instance, generation: session.generation }).then(
          () => session.send({ type: "ack", seq: message.run.seq }),
          (error: unknown) =>
            ctx.log(
              `agent ${session.name}: run report ${message.run.seq} not stored: ${errorMessage(error)}`,
            ),
        );
        return;
      }
      case "metrics": {
        const { type: _, ...sample } = message;
        ctx.store
          .recordMetrics({ ...session.target, ...sample })
          .catch((error: unknown) =>
            ctx.log(`agent ${session.name}: metrics not stored: ${errorMessage(error)}`),
          );
        return;
      }
      default:
        // auth and keepalive never reach the hub (channel.ts)
        return;
    }
  }

  const unreachable = (target: AgentTarget, started: number, message: string): HostOutcome => ({
    status: "unreachable",
    error: {
      code: "HOST_UNREACHABLE",
      message,
      hint: `check the agent on ${target.instance} (galley agent run, its log) and its network path to this server`,
    },
    durationMs: Date.now() - started,
  });

  const upgrade = (
    req: Parameters<AgentChannel["handleUpgrade"]>[0],
    socket: Parameters<AgentChannel["handleUpgrade"]>[1],
    head: Buffer,
  ) => channel.handleUpgrade(req, socket, head);

  return {
    attach(server) {
      servers.add(server);
      server.on("upgrade", upgrade);
    },

    connections(): AgentConnection[] {
      return [...live.values()].map(({ session }) => ({
        stack: session.target.stack,
        instance: session.target.instance,
        generation: session.generation,
        connectedAt: session.connectedAt,
        lastSeenAt: session.lastSeenAt,
        remote: session.remote,
      }));
    },

    connected(target) {
      return live.has(key(target));
    },

    bundleAllowed(target, id) {
      return sentBundles.get(key(target))?.includes(id) ?? false;
    },

    agentForSession(session) {
      const entry = bySession.get(session);
      return entry ? { ...entry.session.target } : undefined;
    },

    retire(target, generation, reason) {
      const entry = live.get(key(target));
      if (!entry || entry.session.generation >= generation) return false;
      entry.session.close(reason);
      return true;
    },

    on(event, listener) {
      listeners[event].add(listener);
      return () => listeners[event].delete(listener);
    },

    converge(target, job: ConvergeJob, options) {
      const started = Date.now();
      const entry = live.get(key(target));
      if (!entry) {
        return Promise.resolve(
          unreachable(target, started, `the agent of ${target.instance} is not connected`),
        );
      }
      if (options.signal?.aborted) {
        return Promise.resolve({
          status: "failed",
          error: {
            code: "INTERRUPTED",
            message: `the run was interrupted before ${target.instance}'s job started`,
          },
          durationMs: 0,
        });
      }
      const id = randomUUID();
      rememberBundle(target, job.bundle);
      return new Promise<HostOutcome>((resolve) => {
        let cancelTimer: NodeJS.Timeout | undefined;
        const onAbort = () => {
          entry.session.send({ type: "cancel", id });
          cancelTimer = setTimeout(() => {
            entry.jobs.delete(id);
            finish(
              unreachable(
                target,
                started,
                `the agent of ${target.instance} did not answer the cancel within ${cancelWaitMs / 1000} s`,
              ),
            );
          }, cancelWaitMs);
        };
        const finish = (outcome: HostOutcome) => {
          clearTimeout(cancelTimer);
          options.signal?.removeEventListener("abort", onAbort);
          resolve(outcome);
        };
        entry.jobs.set(id, {
          target,
          onPhase: options.onPhase,
          done: finish,
          lost: (reason) => finish(unreachable(target, started, reason)),
        });
        issue(entry, id);
        options.signal?.addEventListener("abort", onAbort, { once: true });
        if (!entry.session.send({ type: "job", id, job })) {
          entry.jobs.delete(id);
          finish(unreachable(target, started, `the agent of ${target.instance} is not connected`));
        }
      });
    },

    async connect(target, options): Promise<RemoteHost> {
      const entry = live.get(key(target));
      options?.signal?.throwIfAborted();
      if (!entry) {
        throw new GalleyError("HOST_UNREACHABLE", `the agent of ${target.instance} is not connected`, {
          hint: `check the agent on ${target.instance} (galley agent run, its log) and its network path to this server`,
        });
      }
      return agentHost(target.instance, {
        call(method, args, pending) {
          const id = randomUUID();
          entry.calls.set(id, pending);
          issue(entry, id);
          if (!entry.session.send({ type: "call", id, method, args })) {
            entry.calls.delete(id);
            pending.lost(`the agent of ${target.instance} is not connected`);
          }
        },
        onLost(listener) {
          entry.hosts.add(listener);
          return () => entry.hosts.delete(listener);
        },
      });
    },

    async close() {
      closing = true;
      for (const server of servers) server.off("upgrade", upgrade);
      servers.clear();
      await channel.close();
    },
  };
}

type Listener = (target: AgentTarget, reason: string) => void;

/** How many ids a connection remembers for telling a late answer (dropped) from a forged one (refused). */
const rememberedIds = 1000;

function issue(entry: Live, id: string): void {
  entry.issued.add(id);
  if (entry.issued.size > rememberedIds) {
    const [oldest] = entry.issued;
    if (oldest !== undefined) entry.issued.delete(oldest);
  }
}
