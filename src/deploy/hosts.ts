import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { transports } from "../hosts/transports.ts";
import type { StackContext } from "../lifecycle/context.ts";
import { reach } from "../lifecycle/providers.ts";
import { type Instance, instanceTransport } from "../stacks/schema.ts";

// The deployment's own connections to instances, beside the fleet runs: reading which release is
// current, a migration command, a command health check, the load balancer's view of its backends.
// One connection per instance, opened when first needed and closed at the end of the deployment.

/** A connected instance and its address. */
export interface ReachedInstance {
  host: Host;
  address: string;
}

/** Connections to a stack's instances, opened on demand, closed together. */
export class InstanceConnections {
  readonly #context: StackContext;
  readonly #signal: AbortSignal | undefined;
  readonly #open = new Map<string, Promise<ReachedInstance & { close(): Promise<void> }>>();

  constructor(context: StackContext, signal?: AbortSignal) {
    this.#context = context;
    this.#signal = signal;
  }

  /** The instance's address, without connecting. */
  async address(instance: Instance): Promise<string> {
    const reached = (await reach(this.#context, [instance])).get(instance.name);
    if (!reached?.ok) throw unreachable(instance.name, reached ? reached.error : "no host");
    return reached.address;
  }

  /** The instance connected over its transport (one connection per instance for the deployment). */
  get(instance: Instance): Promise<ReachedInstance> {
    let open = this.#open.get(instance.name);
    if (!open) {
      open = (async () => {
        const reached = (await reach(this.#context, [instance])).get(instance.name);
        if (!reached?.ok) throw unreachable(instance.name, reached ? reached.error : "no host");
        const host = await this.#connect(instance, reached.target);
        return { host, address: reached.address, close: () => host.close() };
      })();
      open.catch(() => this.#open.delete(instance.name));
      this.#open.set(instance.name, open);
    }
    return open;
  }

  // SSH, or the instance's agent channel (transport agent: only through the server's agents)
  async #connect(instance: Instance, target: Parameters<typeof transports.ssh.connect>[0]) {
    const { agents, stack } = this.#context;
    if (instanceTransport(stack, instance) !== "agent")
      return transports.ssh.connect(target, { signal: this.#signal });
    if (!agents) {
      throw new GalleyError("HOST_UNREACHABLE", `${instance.name} is managed by an agent`, {
        hint: "run this through galley server (galley --server URL …)",
      });
    }
    return agents.connect({ stack: stack.name, instance: instance.name }, { signal: this.#signal });
  }

  /** Closes every connection this deployment opened. */
  async close(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.all(all.map((p) => p.then((c) => c.close()).catch(() => {})));
  }
}

function unreachable(name: string, why: string): GalleyError {
  return new GalleyError("HOST_UNREACHABLE", `instance ${name} cannot be reached: ${why}`, {
    hint: "check that it runs: galley stack status",
  });
}
