import * as net from "node:net";

/**
 * A TCP relay that adds `delayMs` of round-trip time: every chunk waits half of it in each
 * direction. `tc netem` is not in this kernel (shared/HOSTS.md), so the benchmark puts this relay
 * between Galley and each host's sshd. Timers of one duration fire in the order they were set,
 * so the byte order of each direction is kept.
 */
export async function latencyRelay(
  target: { host: string; port: number },
  delayMs: number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const oneWay = delayMs / 2;
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true);
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    pipe(client, upstream, oneWay);
    pipe(upstream, client, oneWay);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function pipe(from: net.Socket, to: net.Socket, delayMs: number): void {
  from.on("data", (chunk) => setTimeout(() => to.writable && to.write(chunk), delayMs));
  from.on("end", () => setTimeout(() => to.end(), delayMs));
}
