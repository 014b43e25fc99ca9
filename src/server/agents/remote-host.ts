import { type ErrorCode, errorCodes, GalleyError } from "../../core/errors.ts";
import type { ExecOptions, ExecResult, Facts, Stat, WriteOptions } from "../../core/host.ts";
import { fromWire, type HostMethod, toWire } from "../../fleet/agent-protocol.ts";
import type { OutcomeError, RemoteHost } from "../../fleet/pipeline.ts";

// A Host over an agent's channel: each primitive is one `call` answered by one `result`. Bytes
// travel as base64 (toWire/fromWire); a dropped channel fails every call in flight and every later one.

/** One call waiting for its result. */
export interface PendingCall {
  settle(result: { ok: true; value: unknown } | { ok: false; error: OutcomeError }): void;
  lost(reason: string): void;
}

/** How the host reaches its agent (the hub's side). */
export interface CallPort {
  call(method: HostMethod, args: unknown[], pending: PendingCall): void;
  /** `listener` hears why the channel went; returns the unsubscribe */
  onLost(listener: (reason: string) => void): () => void;
}

/**
 * A RemoteHost whose exec/readFile/writeFile/stat/facts are calls to the agent.
 *
 * @example const host = agentHost("web1", port); await host.exec(["uname", "-r"])
 */
export function agentHost(name: string, port: CallPort): RemoteHost {
  let lost: GalleyError | undefined;
  const inFlight = new Set<PendingCall>();
  const unsubscribe = port.onLost((reason) => {
    lost = new GalleyError("HOST_UNREACHABLE", reason, {
      hint: `check the agent on ${name} (galley agent run, its log) and its network path to this server`,
    });
    for (const pending of inFlight) pending.lost(reason);
  });
  const call = (method: HostMethod, args: unknown[]): Promise<unknown> => {
    if (lost) return Promise.reject(lost);
    return new Promise((resolve, reject) => {
      const pending: PendingCall = {
        settle(result) {
          inFlight.delete(pending);
          if (result.ok) resolve(fromWire(result.value));
          else reject(remoteError(method, result.error));
        },
        lost() {
          inFlight.delete(pending);
          reject(lost ?? new GalleyError("HOST_UNREACHABLE", `the agent of ${name} is not connected`));
        },
      };
      inFlight.add(pending);
      port.call(method, toWire(args) as unknown[], pending);
    });
  };
  return {
    name,
    readConcurrency: 16,
    get lost() {
      return lost;
    },
    async exec(argv: readonly string[], options?: ExecOptions): Promise<ExecResult> {
      return (await call("exec", options ? [argv, options] : [argv])) as ExecResult;
    },
    async readFile(path: string): Promise<Uint8Array | undefined> {
      const value = await call("readFile", [path]);
      if (value === null || value === undefined) return undefined;
      if (value instanceof Uint8Array) return value;
      throw new GalleyError(
        "EXEC_FAILED",
        `the agent of ${name} answered readFile ${path} with something else than bytes`,
      );
    },
    async writeFile(path: string, data: Uint8Array | string, options?: WriteOptions): Promise<void> {
      await call("writeFile", options ? [path, data, options] : [path, data]);
    },
    async stat(path: string): Promise<Stat | undefined> {
      const value = await call("stat", [path]);
      return value === null || value === undefined ? undefined : (value as Stat);
    },
    async facts(): Promise<Facts> {
      return (await call("facts", [])) as Facts;
    },
    async close(): Promise<void> {
      unsubscribe();
    },
  };
}

function remoteError(method: HostMethod, error: OutcomeError): GalleyError {
  const known = Object.hasOwn(errorCodes, error.code);
  const code = (known ? error.code : "EXEC_FAILED") as ErrorCode;
  const message = known ? error.message : `${method} failed on the agent (${error.code}): ${error.message}`;
  return new GalleyError(code, message, error.hint === undefined ? {} : { hint: error.hint });
}
