import { GalleyError } from "../core/errors.ts";
import { LocalHost } from "./local.ts";
import type { SshHost } from "./ssh.ts";
import type { ConnectOptions } from "./ssh-connect.ts";
import type { SshTarget } from "./target.ts";

// Transports: how the engine reaches a host, by name. Adding one (`agent` comes with the server)
// is adding its Host implementation and a line here. The SSH code loads only when it is used.

/** Every transport, by name: each connects a host from its own kind of target. */
export const transports = {
  /** this machine (solo mode: `galley apply`) */
  local: {
    async connect(target: { name?: string }, options: ConnectOptions = {}): Promise<LocalHost> {
      return new LocalHost(target.name, { signal: options.signal });
    },
  },
  /** a machine reached over SSH, agentless (`galley push`, stack events) */
  ssh: {
    async connect(target: SshTarget, options: ConnectOptions = {}): Promise<SshHost> {
      const { SshHost } = await import("./ssh.ts");
      return SshHost.connect(target, options);
    },
  },
} as const;

/** A transport's name: a key of the registry. */
export type TransportName = keyof typeof transports;

/** The transport of that name; an unknown name is a USAGE error listing the registry. */
export function transport<N extends string>(
  name: N,
): N extends TransportName ? (typeof transports)[N] : never {
  if (!Object.hasOwn(transports, name)) {
    throw new GalleyError("USAGE", `no transport "${name}"`, {
      hint: `the transports are: ${Object.keys(transports).join(", ")}`,
    });
  }
  return transports[name as TransportName] as N extends TransportName ? (typeof transports)[N] : never;
}
