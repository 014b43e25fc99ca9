import type { Secrets } from "../core/secrets.ts";
import { type AgentMessage, fromWire, type HostMethod, toWire } from "../fleet/agent-protocol.ts";
import type { LocalHost } from "../hosts/local.ts";
import { describeError } from "./job.ts";

// The server's small reads and commands on this host (a deployment's health checks, a release
// listing): one `call` → one `result`, on the LocalHost. Bytes travel as `{ "$base64": "…" }`
// both ways and `undefined` as null (toWire/fromWire of the protocol).

/**
 * Runs one host call and makes its `result` message (errors become the result's OutcomeError).
 *
 * @example await answerCall(host, "1", "stat", ["/etc/motd"], secrets) // { type: "result", id: "1", ok: true, value: { type: "file", … } }
 */
export async function answerCall(
  host: LocalHost,
  id: string,
  method: HostMethod | string,
  args: unknown[],
  secrets: Secrets,
): Promise<AgentMessage> {
  try {
    const [first, second, third] = fromWire(args) as unknown[];
    let value: unknown;
    if (method === "exec") value = await host.exec(first as string[], (second ?? {}) as object);
    else if (method === "readFile") value = await host.readFile(first as string);
    else if (method === "writeFile")
      value = await host.writeFile(first as string, second as Uint8Array | string, (third ?? {}) as object);
    else if (method === "stat") value = await host.stat(first as string);
    else if (method === "facts") value = await host.facts();
    else throw new Error(`unknown host method ${method}`);
    return { type: "result", id, ok: true, value: toWire(value) };
  } catch (error) {
    return { type: "result", id, ok: false, error: describeError(error, secrets) };
  }
}
