import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Command } from "../cli/commands.ts";
import { parseExpiry, parseGrant, serverCommand, tokenCommand } from "./commands.ts";
import { call } from "./test-support.ts";
import { caFingerprint } from "./tls.ts";

const galley = fileURLToPath(new URL("../../bin/galley.js", import.meta.url));

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [galley, ...args], { encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("the commands fit the CLI's registry; grants and expiries on the command line", () => {
  const commands: Command[] = [serverCommand, tokenCommand];
  assert.equal(commands.length, 2);
  assert.deepEqual(parseGrant("web:deployer"), { stack: "web", role: "deployer" });
  assert.deepEqual(parseGrant("*:admin"), { stack: "*", role: "admin" });
  for (const bad of ["web", "web:root", ":admin", "Web:viewer", "a/b:viewer"])
    assert.throws(() => parseGrant(bad), /STACK:ROLE/);
  const now = new Date("2026-12-04T00:00:00.000Z");
  assert.equal(parseExpiry("30d", now), "2027-01-03T00:00:00.000Z");
  assert.equal(parseExpiry("12h", now), "2026-12-04T12:00:00.000Z");
  assert.equal(parseExpiry("2027-06-30", now), "2027-06-30T00:00:00.000Z");
  assert.throws(() => parseExpiry("2020-01-01", now), /future/);
  assert.throws(() => parseExpiry("soon", now), /duration/);
});

test("galley token makes, lists and revokes tokens that galley server honours; SIGTERM stops it cleanly", async (t) => {
  const kitchen = mkdtempSync(path.join(tmpdir(), "galley-cli-server-"));
  t.after(() => rmSync(kitchen, { recursive: true, force: true }));
  const created = cli([
    "token",
    "create",
    "--kitchen",
    kitchen,
    "--name",
    "ci",
    "--grant",
    "web:viewer",
    "--expires",
    "1d",
    "--json",
  ]);
  assert.equal(created.code, 0, created.stderr);
  const { token, secret } = JSON.parse(created.stdout) as {
    token: { id: string; name: string };
    secret: string;
  };
  assert.equal(token.name, "ci");
  const refused = cli(["token", "create", "--kitchen", kitchen, "--name", "x", "--grant", "web:root"]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /error\[ARGS_INVALID\]/);

  const server = spawn(
    process.execPath,
    [galley, "server", "--kitchen", kitchen, "--listen", "127.0.0.1:0", "--json"],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const exited = new Promise<number | null>((resolve) => server.on("exit", (code) => resolve(code)));
  t.after(() => {
    if (server.exitCode === null) server.kill("SIGKILL");
  });
  let stderr = "";
  server.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [line] = await Promise.race([
    createInterface({ input: server.stdout })
      [Symbol.asyncIterator]()
      .next()
      .then((r) => [r.value as string]),
    exited.then((code) => assert.fail(`galley server exited ${code}: ${stderr}`)),
  ]);
  const started = JSON.parse(line ?? "") as { status: string; url: string; caFingerprint: string };
  assert.equal(started.status, "listening");
  const caPem = readFileSync(path.join(kitchen, ".galley/server/tls/ca.pem"), "utf8");
  assert.equal(caFingerprint(caPem), started.caFingerprint);
  const target = { url: started.url, caPem };
  assert.equal((await call(target, "GET", "/v1/audit?stack=web", { token: secret })).status, 200);
  assert.equal((await call(target, "GET", "/v1/audit?stack=db", { token: secret })).status, 403);

  const listed = cli(["token", "list", "--kitchen", kitchen, "--json"]);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as { tokens: { name: string }[] }).tokens.map((t) => t.name),
    ["ci"],
  );
  const revoked = cli(["token", "revoke", token.id, "--kitchen", kitchen]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, /revoked/);
  const after = await call(target, "GET", "/v1/audit?stack=web", { token: secret });
  assert.equal(after.status, 401);
  assert.equal(cli(["token", "revoke", "nope", "--kitchen", kitchen]).code, 2);

  const audited = cli(["token", "list", "--kitchen", kitchen]);
  assert.equal(audited.code, 0);
  const { openSqliteStore, storeFile } = await import("../store/sqlite.ts");
  const store = openSqliteStore(storeFile(kitchen));
  const changes = (await store.listAudit({ outcome: "ok" })).map((e) => [
    e.actor.replace(/:.*/, ""),
    e.action,
    e.target,
  ]);
  await store.close();
  assert.deepEqual(changes, [
    ["local", "token.revoke", token.id],
    ["local", "token.create", token.id],
  ]);

  server.kill("SIGTERM");
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /SIGTERM: stopping/);
  assert.ok(!stderr.includes(secret));
});
