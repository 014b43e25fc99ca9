import * as net from "node:net";
import { sleep } from "./procs.ts";

/** Connects to `address:port` and reads the SSH banner; the banner line, or undefined. */
export function sshBanner(address: string, timeoutMs = 1_000, port = 22): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port, timeout: timeoutMs });
    let data = "";
    const done = (banner: string | undefined) => {
      socket.destroy();
      resolve(banner);
    };
    socket.on("data", (chunk) => {
      data += chunk.toString("latin1");
      const line = data.split("\r\n")[0] ?? "";
      if (data.includes("\n")) done(line.startsWith("SSH-") ? line.trim() : undefined);
    });
    socket.on("timeout", () => done(undefined));
    socket.on("error", () => done(undefined));
    socket.on("close", () => done(undefined));
  });
}

/**
 * Waits until the host's sshd answers from the machine side (TCP connect and SSH banner), while
 * `alive()` holds; true when it answered, false when the host died or `timeoutMs` passed.
 */
export async function waitForSsh(address: string, alive: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await sshBanner(address)) return true;
    if (!alive()) return false;
    await sleep(100);
  }
  return false;
}
