import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { TestContext } from "node:test";
import { type RunningServer, type StartServerOptions, startServer } from "./server.ts";

// For the server's tests: a real server on 127.0.0.1:0 in a fresh kitchen, and HTTPS requests
// pinned to its CA (a fresh connection each, so that one refused request cannot spoil the next).

/** An HTTP response as the tests read it. */
export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** the body parsed as JSON (undefined when it is not JSON) */
  json: unknown;
}

/** Starts a server in a fresh kitchen (or `options.kitchen`), stopped and removed after the test. */
export async function testServer(
  t: TestContext,
  options: Partial<StartServerOptions> = {},
): Promise<RunningServer & { adminToken: string; kitchen: string }> {
  const kitchen = options.kitchen ?? mkdtempSync(path.join(tmpdir(), "galley-server-"));
  const server = await startServer({ log: () => {}, ...options, kitchen });
  t.after(async () => {
    await server.close();
    if (options.kitchen === undefined) rmSync(kitchen, { recursive: true, force: true });
  });
  return { ...server, kitchen, adminToken: readFileSync(server.adminTokenFile, "utf8").trim() };
}

/** One HTTPS request to the server, pinned to `ca` (default: the server's own CA). */
export function call(
  server: { url: string; caPem: string },
  method: string,
  urlPath: string,
  options: {
    token?: string;
    body?: unknown;
    raw?: string | Buffer;
    headers?: Record<string, string>;
    ca?: string;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let payload: string | Buffer | undefined = options.raw;
  if (options.body !== undefined) {
    payload = JSON.stringify(options.body);
    headers["content-type"] ??= "application/json";
  }
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}${urlPath}`,
      { method, ca: options.ca ?? server.caPem, headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}
