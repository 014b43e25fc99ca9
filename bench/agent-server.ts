import { serveKitchen } from "../src/server/serve.ts";

// The server under the agents benchmark (bench/agents.ts), in a process of its own so that its CPU
// and memory are its own: `node bench/agent-server.ts KITCHEN`. Prints one JSON line when it
// listens, then serves until SIGTERM.
const kitchen = process.argv[2];
if (!kitchen) throw new Error("usage: agent-server.ts KITCHEN");
const server = await serveKitchen({ kitchen, listen: "127.0.0.1:0", log: () => {} });
process.stdout.write(
  `${JSON.stringify({ url: server.url, port: server.port, ca: server.caPem, tokenFile: server.adminTokenFile })}\n`,
);
process.once("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});
