// The example app: answers with the instance it runs on, its revision and whether its database
// answers. Node.js built-ins only, so a release needs no `npm install` (Debian 12's nodejs 18).
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { connect } from "node:net";
import { hostname } from "node:os";

const port = Number(process.env.PORT || 3000);
const app = process.env.APP_NAME || "hello";
const revision = (process.env.REVISION || readRevision()).slice(0, 7);

// the deploy recipe writes REVISION beside this file; a checkout run by hand has none
function readRevision() {
  try {
    return readFileSync(new URL("REVISION", import.meta.url), "utf8").trim() || "unknown";
  } catch {
    return "unknown";
  }
}

/** Whether a TCP connection to host:port opens within the timeout. */
function reachable(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => done(true));
    socket.once("timeout", () => done(false));
    socket.once("error", () => done(false));
  });
}

async function database() {
  const host = process.env.DB_HOST;
  if (!host) return "no db configured";
  const dbPort = Number(process.env.DB_PORT || 5432);
  const name = process.env.DB_INSTANCE ? `${process.env.DB_INSTANCE} ` : "";
  const state = (await reachable(host, dbPort)) ? "reachable" : "unreachable";
  return `db ${name}${host}:${dbPort} ${state}`;
}

const server = createServer(async (request, response) => {
  const path = new URL(request.url ?? "/", "http://localhost").pathname;
  if (request.method !== "GET" && request.method !== "HEAD") {
    response.writeHead(405, { "content-type": "text/plain" }).end("method not allowed\n");
  } else if (path === "/health") {
    response.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
  } else if (path === "/") {
    const line = `hello from ${hostname()} (${app} ${revision}, ${await database()})\n`;
    response.writeHead(200, { "content-type": "text/plain" }).end(line);
  } else {
    response.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  }
});

server.listen(port, () => console.log(`${app} ${revision} listening on port ${port}`));

// systemd stops the service with SIGTERM: finish the requests in flight, then exit; idle
// keep-alive connections (HAProxy keeps some) would otherwise hold the exit for 5 s
process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
