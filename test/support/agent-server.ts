import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { isGalleyError } from "../../src/core/errors.ts";
import { preparedBundleFile } from "../../src/cookbooks/prepared.ts";
import type { AgentTarget } from "../../src/fleet/agent-protocol.ts";
import { type ServerSettings, defaultSettings } from "../../src/server/context.ts";
import { enrollAgent, mintEnrollment } from "../../src/server/agents/enrollment.ts";
import { createAgentHub, type ServerAgentHub } from "../../src/server/agents/hub.ts";
import type { Store } from "../../src/store/store.ts";

// The agent side of a Galley server for real-host tests: a real HTTPS server with its own CA, the
// real agent hub (B2) on its channel, and the agent routes an agent calls (GET /v1/ca.pem, POST
// /v1/agents/enroll, GET /v1/bundles/:id). Its certificate is made for the address the container
// hosts reach this machine at (their gateway), known once the first host exists.

/** The agent side of a server, listening on every address of this machine. */
export interface AgentServer {
  hub: ServerAgentHub;
  port: number;
  /** `https://<gateway>:<port>` for an instance at `address` (the certificate is made for that gateway) */
  urlFor(address: string): string;
  /** a one-time enrollment token for an instance, as `galley agent token` mints it */
  mint(target: AgentTarget): Promise<string>;
  close(): Promise<void>;
}

/** Starts the agent side of a server over `store` (the kitchen's); bundles come from `cacheDir`. */
export async function startAgentServer(
  store: Store,
  dir: string,
  cacheDir: string,
  settings: Partial<ServerSettings> = {},
): Promise<AgentServer> {
  await fs.mkdir(dir, { recursive: true });
  const at = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "ignore" });
  openssl(
    ...["req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", at("ca.key"), "-out", at("ca.pem")],
    ...["-days", "2", "-subj", "/CN=galley test CA"],
  );
  const ca = readFileSync(at("ca.pem"), "utf8");
  const caFingerprint = createHash("sha256").update(new X509Certificate(ca).raw).digest("hex");
  // a certificate for `ip`, signed by the CA
  const certificate = (ip: string) => {
    openssl(
      "req",
      "-newkey",
      "ed25519",
      "-nodes",
      "-keyout",
      at("server.key"),
      "-out",
      at("server.csr"),
      "-subj",
      "/CN=galley",
    );
    writeFileSync(at("ext.cnf"), `subjectAltName=IP:${ip},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n`);
    openssl(
      ...["x509", "-req", "-in", at("server.csr"), "-CA", at("ca.pem"), "-CAkey", at("ca.key")],
      ...["-CAcreateserial", "-out", at("server.pem"), "-days", "2", "-extfile", at("ext.cnf")],
    );
    return { key: readFileSync(at("server.key"), "utf8"), cert: readFileSync(at("server.pem"), "utf8") };
  };
  const logs: string[] = [];
  const hub = createAgentHub({
    store,
    settings: { ...defaultSettings, runIntervalMs: 3_600_000, splayMs: 1000, ...settings },
    log: (line) => logs.push(line),
    id: "test-server",
  });
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.method === "GET" && req.url === "/v1/ca.pem") return void res.end(ca);
    if (req.method === "POST" && req.url === "/v1/agents/enroll") {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { token: string; publicKey: string };
        return json(res, 200, await enrollAgent(store, body, caFingerprint));
      } catch (error) {
        const code = isGalleyError(error) ? error.code : "INTERNAL";
        return json(res, 401, { error: { code, message: String((error as Error).message) } });
      }
    }
    const bundle = /^\/v1\/bundles\/([0-9a-f]{64})$/.exec(req.url ?? "")?.[1];
    if (req.method === "GET" && bundle) {
      const session = /^Agent (.+)$/.exec(req.headers.authorization ?? "")?.[1];
      if (!session || !hub.agentForSession(session))
        return json(res, 401, { error: { code: "UNAUTHORIZED", message: "no agent session" } });
      const data = await fs.readFile(preparedBundleFile(bundle, cacheDir)).catch(() => undefined);
      if (!data) return json(res, 404, { error: { code: "BUNDLE_UNKNOWN", message: `no bundle ${bundle}` } });
      res.writeHead(200, { "content-type": "application/gzip" });
      return void res.end(data);
    }
    json(res, 404, { error: { code: "NOT_FOUND", message: "no route" } });
  };
  const server = createServer(certificate("127.0.0.1"), (req, res) => {
    handler(req, res).catch((error) =>
      json(res, 500, { error: { code: "INTERNAL", message: String(error) } }),
    );
  });
  hub.attach(server);
  await new Promise<void>((resolve) => server.listen(0, "0.0.0.0", resolve));
  const { port } = server.address() as AddressInfo;
  let served = "";
  return {
    hub,
    port,
    urlFor(address) {
      const gateway = address.replace(/\.\d+$/, ".1");
      if (served !== gateway) {
        server.setSecureContext(certificate(gateway));
        served = gateway;
      }
      return `https://${gateway}:${port}`;
    },
    mint: (target) => mintEnrollment(store, { ...target, caFingerprint, ttlMs: 600_000 }),
    async close() {
      await hub.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
