import type { Secrets } from "../core/secrets.ts";
import type { HostMethod } from "../fleet/agent-protocol.ts";
import type { LocalHost } from "../hosts/local.ts";
import type { AgentMessage } from "../fleet/agent-protocol.ts";
import { describeError } from "./job.ts";

// The server's small reads and commands on this host (a deployment's health checks, a release
// listing): one `call` → one `result`, on the LocalHost. Bytes travel as `{ "$base64": "…" }`
// both ways and `undefined` as null (the hub's toWire/fromWire format).

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

/** Bytes as `{ $base64 }`, undefined as null, recursively. */
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

/** `{ $base64 }` back to bytes, recursively (null stays null). */
export function fromWire(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromWire);
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value);
    const [first] = entries;
    if (entries.length === 1 && first?.[0] === "$base64" && typeof first[1] === "string")
      return new Uint8Array(Buffer.from(first[1], "base64"));
    return Object.fromEntries(entries.map(([key, item]) => [key, fromWire(item)]));
  }
  return value;
}
