import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { certificateFingerprint, decodeEnrollment, enrollAgent } from "../server/agents/enrollment.ts";
import { agentKey, throwawayTls } from "../server/agents/testing.ts";
import { openSqliteStore, storeFile } from "../store/sqlite.ts";
import { agentToken, parseTtl } from "./agent-token.ts";

async function capture(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const write = process.stdout.write;
  let out = "";
  process.stdout.write = ((chunk: string | Uint8Array) => {
    out += typeof chunk === "string" ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await run(), out };
  } finally {
    process.stdout.write = write;
  }
}

test("galley agent token mints a token naming the server's CA that enrolls the instance once", async (t) => {
  const kitchen = mkdtempSync(path.join(tmpdir(), "galley-agent-token-"));
  t.after(() => rmSync(kitchen, { recursive: true, force: true }));
  const usage = (e: unknown) => e instanceof GalleyError && e.code === "USAGE";
  await assert.rejects(
    agentToken({ stack: "prod", kitchen }, ["web1"]),
    (e) => usage(e) && /no server CA/.test(String(e)),
  );
  const tls = path.join(kitchen, ".galley", "server", "tls");
  mkdirSync(tls, { recursive: true });
  const { cert } = throwawayTls(kitchen);
  copyFileSync(path.join(kitchen, "cert.pem"), path.join(tls, "ca.pem"));
  await assert.rejects(
    agentToken({ stack: "prod", kitchen }, ["web1"]),
    (e) => usage(e) && /no instance web1/.test(String(e)),
  );
  await assert.rejects(agentToken({ kitchen }, ["web1"]), usage);
  await assert.rejects(agentToken({ stack: "prod", kitchen }, []), usage);
  const store = openSqliteStore(storeFile(kitchen));
  t.after(() => store.close());
  await store.upsertInstance({ stack: "prod", name: "web1", layers: ["web"], provider: "ssh" });

  const { code, out } = await capture(() =>
    agentToken({ stack: "prod", kitchen, json: true, ttl: "30m" }, ["web1"]),
  );
  assert.equal(code, 0);
  const printed = JSON.parse(out) as { token: string; stack: string; instance: string; expiresAt: string };
  assert.equal(printed.stack, "prod");
  const decoded = decodeEnrollment(printed.token);
  assert.equal(decoded.ca, certificateFingerprint(cert));
  const enrolled = await enrollAgent(
    store,
    { token: printed.token, publicKey: agentKey().publicKey },
    decoded.ca,
  );
  assert.deepEqual(enrolled, { stack: "prod", instance: "web1", generation: 1 });
});

test("--ttl takes minutes, hours and days up to 30 days", () => {
  assert.equal(parseTtl("30m"), 1_800_000);
  assert.equal(parseTtl("24h"), 86_400_000);
  assert.equal(parseTtl("7d"), 604_800_000);
  for (const bad of ["0h", "31d", "1w", "", "h"]) assert.throws(() => parseTtl(bad), /is not a duration/);
});
