import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Command } from "../cli/commands.ts";
import { parseExpiry, parseGrant, serverCommand, tokenCommand, userCommand } from "./commands.ts";
import { call, testServer } from "./test-support.ts";
import { caFingerprint } from "./tls.ts";

const galley = fileURLToPath(new URL("../../bin/galley.js", import.meta.url));

function cli(args: string[]) {
  const result = spawnSync(process.execPath, [galley, ...args], { encoding: "utf8" });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("the commands fit the CLI's registry; grants and expiries on the command line", () => {
  const commands: Command[] = [serverCommand, tokenCommand, userCommand];
  assert.equal(commands.length, 3);
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

test("galley user adds, lists, changes and removes users the server logs in; passwords from stdin or the terminal", async (t) => {
  const kitchen = mkdtempSync(path.join(tmpdir(), "galley-cli-users-"));
  t.after(() => rmSync(kitchen, { recursive: true, force: true }));
  const user = (args: string[], input?: string) => {
    const result = spawnSync(process.execPath, [galley, "user", ...args, "--kitchen", kitchen], {
      encoding: "utf8",
      ...(input === undefined ? { stdio: ["ignore", "pipe", "pipe"] } : { input }),
    });
    return { code: result.status, stdout: result.stdout, stderr: result.stderr };
  };
  const password = "correct horse battery staple";
  const added = user(
    ["add", "alice", "--grant", "web:deployer", "--password-stdin", "--json"],
    `${password}\n`,
  );
  assert.equal(added.code, 0, added.stderr);
  const shown = JSON.parse(added.stdout) as { user: Record<string, unknown> };
  assert.deepEqual(shown.user.grants, [{ stack: "web", role: "deployer" }]);
  assert.equal(shown.user.passwordHash, undefined);
  assert.doesNotMatch(added.stdout, /scrypt/);

  const refusals: [string[], string | undefined, number, RegExp][] = [
    [["add", "alice", "--grant", "web:viewer", "--password-stdin"], password, 2, /user alice exists/],
    [["add", "bob", "--grant", "web:viewer", "--password-stdin"], "short", 2, /at least 12 characters/],
    [["add", "bob", "--password-stdin"], password, 2, /--grant/],
    [["add", "bad name", "--grant", "web:viewer", "--password-stdin"], password, 2, /user name/],
    [["add", "bob", "--grant", "web:viewer"], undefined, 2, /--password-stdin/],
    [["passwd", "nobody", "--password-stdin"], password, 2, /no user nobody/],
    [["remove"], undefined, 2, /which user/],
    [["rename", "x"], undefined, 2, /unknown subcommand/],
    [["passwd", "alice", "--grant", "web:admin"], undefined, 2, /--grant is for add/],
  ];
  for (const [args, input, code, message] of refusals) {
    const refused = user(args, input);
    assert.equal(refused.code, code, args.join(" "));
    assert.match(refused.stderr, message, args.join(" "));
  }

  const server = await testServer(t, { kitchen });
  const login = (pw: string) =>
    call(server, "POST", "/v1/session", { body: { user: "alice", password: pw } });
  const session = await login(password);
  assert.equal(session.status, 201, session.text);
  const cookie = String(session.headers["set-cookie"]).split(";")[0] ?? "";

  const listed = user(["list"]);
  assert.match(listed.stdout, /^alice +web:deployer +last login 20/);
  const newPassword = "a brand new passphrase";
  const changed = user(["passwd", "alice", "--password-stdin", "--json"], newPassword);
  assert.equal(changed.code, 0, changed.stderr);
  assert.equal((JSON.parse(changed.stdout) as { sessions: number }).sessions, 1);
  assert.equal((await call(server, "GET", "/v1/session", { headers: { cookie } })).status, 401);
  assert.equal((await login(password)).status, 401);
  assert.equal((await login(newPassword)).status, 201);

  // on a terminal the password is asked twice and not echoed
  const typed = "typed on a terminal!";
  const terminal = spawn(
    "script",
    ["-qec", `${process.execPath} ${galley} user passwd alice --kitchen ${kitchen}`, "/dev/null"],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let screen = "";
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "${text}" in ${JSON.stringify(screen)}`)), 20_000);
      const check = () => {
        if (!screen.includes(text)) return;
        clearTimeout(timer);
        terminal.stdout.off("data", check);
        resolve();
      };
      terminal.stdout.on("data", check);
      check();
    });
  terminal.stdout.on("data", (chunk: Buffer) => {
    screen += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => terminal.on("exit", resolve));
  await waitFor("password for alice: ");
  terminal.stdin.write(`${typed}\r`);
  await waitFor("again: ");
  terminal.stdin.write(`${typed}\r`);
  assert.equal(await exited, 0, screen);
  assert.match(screen, /password of alice changed/);
  assert.ok(!screen.includes(typed), `the password was echoed: ${JSON.stringify(screen)}`);
  assert.equal((await login(typed)).status, 201);

  const removed = user(["remove", "alice", "--json"]);
  assert.deepEqual(JSON.parse(removed.stdout), { removed: "alice", sessions: 1 });
  assert.equal((await login(typed)).status, 401);
  assert.equal(user(["list"]).stdout, "no users\n");
  const audit = await server.ctx.store.listAudit({ outcome: "ok", limit: 20 });
  assert.deepEqual(
    audit.filter((e) => e.actor.startsWith("local:")).map((e) => e.action),
    ["user.delete", "user.update", "user.update", "user.create"],
  );
  assert.ok(!JSON.stringify(audit).includes(password));

  // galley token revoke ends the web sessions opened with the token
  const admin = await call(server, "POST", "/v1/session", { body: { token: server.adminToken } });
  const adminCookie = String(admin.headers["set-cookie"]).split(";")[0] ?? "";
  const [token] = (await server.ctx.store.listTokens()).filter((t) => t.name === "admin");
  assert.equal(cli(["token", "revoke", token?.id ?? "", "--kitchen", kitchen]).code, 0);
  assert.equal((await call(server, "GET", "/v1/session", { headers: { cookie: adminCookie } })).status, 401);
});
