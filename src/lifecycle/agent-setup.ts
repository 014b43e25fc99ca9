import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import type { AgentLink, AgentTarget } from "../fleet/agent-protocol.ts";
import type { SshTarget } from "../hosts/target.ts";
import type { Instance } from "../stacks/schema.ts";
import { installAgent } from "./agent-install.ts";
import type { StackContext } from "./context.ts";

// Starting an instance with `transport: agent`: once its provider made the host, Galley installs
// and enrolls its agent over the provider's SSH target, then waits for the agent to connect; its
// setup, deploy and configure then go through the agent like any instance's.

/** How long a new agent has to connect to the server (ms). */
export const agentConnectTimeoutMs = 120_000;

/** The kitchen's cache of agent packages. */
export function agentCacheDir(kitchen: string): string {
  return path.join(kitchen, ".galley", "cache", "agent");
}

/**
 * Installs, enrolls and starts the agent of a freshly provisioned instance, then waits until the
 * server sees it connected. Outside the server (no AgentLink) it is HOST_UNREACHABLE with a hint.
 */
export async function setupAgentInstance(
  context: StackContext,
  instance: Instance,
  target: SshTarget,
  options: {
    log?: ((line: string) => void) | undefined;
    signal?: AbortSignal | undefined;
    timeoutMs?: number;
  } = {},
): Promise<void> {
  const agent: AgentTarget = { stack: context.stack.name, instance: instance.name };
  if (!context.agents || !context.agentEnrollment) {
    throw new GalleyError("HOST_UNREACHABLE", `${instance.name} is managed by an agent`, {
      hint: "run this through galley server (galley --server URL …)",
    });
  }
  const enrollment = context.agentEnrollment;
  const { serverUrl, token } = await enrollment(agent);
  // a host enrolled before (a stopped instance started again) keeps its enrollment
  const installed = await installAgent(target, {
    serverUrl,
    token: async () => token,
    agent,
    cacheDir: agentCacheDir(context.kitchen),
    log: options.log,
    signal: options.signal,
  });
  const timeoutMs = options.timeoutMs ?? agentConnectTimeoutMs;
  // restarted: the connection of the agent it replaced goes first, then the new one comes
  if (installed.restarted) await waitGone(context.agents, agent, 15_000);
  await waitConnected(context.agents, agent, timeoutMs, options.signal);
}

// the old agent's channel closes as its process ends; after `ms` the wait for a connection decides
async function waitGone(agents: AgentLink, target: AgentTarget, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (agents.connected(target) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/** Resolves once the instance's agent is connected; HOST_UNREACHABLE after `timeoutMs`. */
export async function waitConnected(
  agents: AgentLink,
  target: AgentTarget,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!agents.connected(target)) {
    if (signal?.aborted)
      throw new GalleyError("INTERRUPTED", `waiting for ${target.instance}'s agent was interrupted`);
    if (Date.now() > deadline) {
      throw new GalleyError(
        "HOST_UNREACHABLE",
        `the agent of ${target.instance} (stack ${target.stack}) did not connect within ${Math.round(timeoutMs / 1000)} s`,
        {
          hint: "on the host: journalctl -u galley-agent (systemd) or /var/log/galley-agent.log (sysv); check that it reaches the server's URL",
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
