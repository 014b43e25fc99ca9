import { setTimeout as sleep } from "node:timers/promises";
import { errorMessage } from "../core/errors.ts";
import type { Host } from "../core/host.ts";

// An instance counts as deployed only when its health check passes: an HTTP request from the
// control machine to the instance (what a load balancer would do), or a command on the instance.

/** An app's health check as the stack file gives it (defaults applied). */
export interface HealthCheckSpec {
  http?:
    | { path: string; port: number; method?: string; status?: number; body?: string | undefined }
    | undefined;
  command?: string | undefined;
  /** seconds per try */
  timeout: number;
  /** tries before the check fails */
  retries: number;
  /** seconds between tries */
  interval: number;
}

/** How a check ended: passed, or failed with what the last try saw; each try's line for the log. */
export interface HealthResult {
  ok: boolean;
  tries: number;
  /** one line per try: "try 2: HTTP 502" */
  log: string[];
}

/** What a check needs of the instance: its address, and a connected host for a command check. */
export interface HealthTarget {
  address: string;
  host?: () => Promise<Host>;
  signal?: AbortSignal | undefined;
}

/**
 * Runs the check until it passes or its tries are spent (`retries` tries, `interval` seconds
 * apart, each at most `timeout` seconds).
 *
 * @example await checkHealth({ http: { path: "/", port: 3000 }, timeout: 5, retries: 10, interval: 1 }, { address: "10.0.0.5" })
 */
export async function checkHealth(spec: HealthCheckSpec, target: HealthTarget): Promise<HealthResult> {
  const log: string[] = [];
  for (let attempt = 1; attempt <= spec.retries; attempt++) {
    target.signal?.throwIfAborted();
    const said = spec.http ? await httpTry(spec, target) : await commandTry(spec, target);
    log.push(`try ${attempt}: ${said.line}`);
    if (said.ok) return { ok: true, tries: attempt, log };
    if (attempt < spec.retries) await sleep(spec.interval * 1000, undefined, { signal: target.signal });
  }
  return { ok: false, tries: spec.retries, log };
}

async function httpTry(spec: HealthCheckSpec, target: HealthTarget): Promise<{ ok: boolean; line: string }> {
  const http = spec.http!;
  const host = target.address.includes(":") ? `[${target.address}]` : target.address;
  const url = `http://${host}:${http.port}${http.path.startsWith("/") ? "" : "/"}${http.path}`;
  const method = http.method ?? "GET";
  try {
    const response = await fetch(url, {
      method,
      signal: AbortSignal.timeout(spec.timeout * 1000),
      headers: { "user-agent": "galley-health-check" },
    });
    const text = await response.text();
    const expected = http.status ?? 200;
    if (response.status !== expected)
      return { ok: false, line: `${method} ${url}: HTTP ${response.status}, not ${expected}` };
    if (http.body !== undefined && !text.includes(http.body))
      return {
        ok: false,
        line: `${method} ${url}: HTTP ${response.status} without "${http.body}" in the body`,
      };
    return { ok: true, line: `${method} ${url}: HTTP ${response.status}` };
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    const why =
      (error as Error).name === "TimeoutError"
        ? `no answer within ${spec.timeout} s`
        : (cause ?? errorMessage(error));
    return { ok: false, line: `${method} ${url}: ${why}` };
  }
}

async function commandTry(
  spec: HealthCheckSpec,
  target: HealthTarget,
): Promise<{ ok: boolean; line: string }> {
  if (!target.host) return { ok: false, line: "a command check needs the instance's host" };
  try {
    const host = await target.host();
    const result = await host.exec(["sh", "-c", spec.command!], { timeoutMs: spec.timeout * 1000 });
    const said = (result.stderr || result.stdout).trim().split("\n").slice(-1)[0] ?? "";
    if (result.timedOut) return { ok: false, line: `${spec.command}: no end within ${spec.timeout} s` };
    return {
      ok: result.exitCode === 0,
      line: `${spec.command}: exit ${result.exitCode}${said ? ` (${said.slice(0, 200)})` : ""}`,
    };
  } catch (error) {
    return { ok: false, line: `${spec.command}: ${errorMessage(error)}` };
  }
}
