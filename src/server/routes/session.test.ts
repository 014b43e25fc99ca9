import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import type { TestContext } from "node:test";
import { test } from "node:test";
import * as v from "valibot";
import type { Registrar } from "../app.ts";
import { mintToken } from "../auth.ts";
import { defineRoute } from "../openapi.ts";
import { sessionCookie, sessionHash } from "../sessions.ts";
import { call, type Reply, testServer } from "../test-support.ts";

/** A stack's read (viewer) and change (deployer) routes, for the sessions to be tried on. */
const stackRoutes: Registrar = (app, ctx) => {
  const params = v.object({ stack: v.pipe(v.string(), v.regex(/^[a-z0-9-]+$/)) });
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/test/:stack",
      summary: "read",
      auth: "token",
      role: "viewer",
      params,
      stack: (p) => p.stack,
      response: v.object({ stack: v.string() }),
    },
    ({ params }) => ({ stack: params.stack }),
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/test/:stack/deploy",
      summary: "change",
      auth: "token",
      role: "deployer",
      action: "test.deploy",
      params,
      stack: (p) => p.stack,
      body: v.strictObject({ app: v.string() }),
      response: v.object({ deployed: v.string() }),
    },
    ({ body }) => ({ deployed: body.app }),
  );
};

type Server = Awaited<ReturnType<typeof testServer>>;

interface Session {
  secret: string;
  csrf: string;
  body: { actor: { kind: string; name: string }; grants: unknown[]; csrf: string; expiresAt: string };
  reply: Reply;
}

const password = "correct horse battery staple";

async function start(t: TestContext): Promise<Server> {
  return testServer(t, { routes: [stackRoutes] });
}

async function addUser(server: Server, name: string, grants: { stack: string; role: string }[]) {
  const reply = await call(server, "POST", "/v1/users", {
    token: server.adminToken,
    body: { name, password, grants },
  });
  assert.equal(reply.status, 201, reply.text);
}

async function login(server: Server, body: unknown, headers: Record<string, string> = {}): Promise<Session> {
  const reply = await call(server, "POST", "/v1/session", { body, headers });
  assert.equal(reply.status, 201, reply.text);
  const cookie = String(reply.headers["set-cookie"]);
  const secret = new RegExp(`^${sessionCookie}=([A-Za-z0-9_-]{43});`).exec(cookie)?.[1];
  assert.ok(secret, cookie);
  const parsed = reply.json as Session["body"];
  return { secret, csrf: parsed.csrf, body: parsed, reply };
}

function cookie(session: { secret: string }, extra: Record<string, string> = {}): Record<string, string> {
  return { cookie: `theme=dark; ${sessionCookie}=${session.secret}`, ...extra };
}

function code(reply: Reply): string | undefined {
  return (reply.json as { error?: { code: string } } | undefined)?.error?.code;
}

test("a token logs in: the cookie's flags, the session's body, and the cookie authenticates a viewer route", async (t) => {
  const server = await start(t);
  const session = await login(server, { token: server.adminToken });
  assert.deepEqual(session.reply.headers["set-cookie"], [
    `${sessionCookie}=${session.secret}; Secure; HttpOnly; SameSite=Strict; Path=/`,
  ]);
  assert.deepEqual(session.body.actor, { kind: "token", name: "admin" });
  assert.deepEqual(session.body.grants, [{ stack: "*", role: "admin" }]);
  assert.match(session.csrf, /^[A-Za-z0-9_-]{43}$/);
  const hours = (Date.parse(session.body.expiresAt) - Date.now()) / 3_600_000;
  assert.ok(hours > 11.9 && hours <= 12, `expires in ${hours} h`);
  const stored = await server.ctx.store.sessionByHash(sessionHash(session.secret), new Date().toISOString());
  assert.equal(stored?.csrf, session.csrf);
  assert.notEqual(stored?.hash, session.secret);

  const again = await call(server, "GET", "/v1/session", { headers: cookie(session) });
  assert.equal(again.status, 200, again.text);
  assert.deepEqual(again.json, session.body);
  assert.equal(again.headers["set-cookie"], undefined);
  const read = await call(server, "GET", "/v1/test/web", { headers: cookie(session) });
  assert.deepEqual([read.status, read.json], [200, { stack: "web" }]);
  const tokens = await call(server, "GET", "/v1/tokens", { headers: cookie(session) });
  assert.equal(tokens.status, 200);

  const none = await call(server, "GET", "/v1/session");
  assert.deepEqual([none.status, code(none)], [401, "UNAUTHORIZED"]);
  const forged = await call(server, "GET", "/v1/session", { headers: cookie({ secret: "A".repeat(43) }) });
  assert.deepEqual([forged.status, code(forged)], [401, "UNAUTHORIZED"]);
  for (const hostile of [
    `${sessionCookie}=`,
    `${sessionCookie}=${"A".repeat(5000)}`,
    `${sessionCookie}=${session.secret.slice(1)}`,
    `${sessionCookie}=${session.secret}=`,
    `${sessionCookie}="${session.secret}"`,
    `${sessionCookie}=../../etc/passwd`,
    `${sessionCookie}=%00%ff; ${sessionCookie}=${session.secret}`,
  ]) {
    const refused = await call(server, "GET", "/v1/test/web", { headers: { cookie: hostile } });
    assert.deepEqual([refused.status, code(refused)], [401, "UNAUTHORIZED"], hostile.slice(0, 80));
  }
  // other cookies, and a cookie of a similar name, are no session: no actor, as without a cookie
  const unrelated = await call(server, "GET", "/v1/test/web", {
    headers: { cookie: `galley_session=${session.secret}; __Host-galley_session_x=${session.secret}` },
  });
  assert.deepEqual([unrelated.status, code(unrelated)], [401, "UNAUTHORIZED"]);
  assert.match(unrelated.text, /needs a token or a web session/);
  const bearer = await call(server, "GET", "/v1/session", { token: server.adminToken });
  assert.equal(bearer.status, 200);
  assert.deepEqual((bearer.json as Session["body"]).actor, { kind: "token", name: "admin" });
});

test("a user logs in with a password; the login is audited, never the password or the cookie's secret", async (t) => {
  const server = await start(t);
  await addUser(server, "alice", [{ stack: "web", role: "deployer" }]);
  const session = await login(server, { user: "alice", password });
  assert.deepEqual(session.body.actor, { kind: "user", name: "alice" });
  assert.deepEqual(session.body.grants, [{ stack: "web", role: "deployer" }]);
  const me = await call(server, "GET", "/v1/session", { headers: cookie(session) });
  assert.deepEqual(me.json, session.body);
  const users = await call(server, "GET", "/v1/users", { token: server.adminToken });
  const [alice] = (users.json as { users: { name: string; lastLoginAt?: string }[] }).users;
  assert.equal(alice?.name, "alice");
  assert.ok(alice?.lastLoginAt, "the login is recorded");
  assert.doesNotMatch(users.text, /scrypt|passwordHash/);

  const wrong = await call(server, "POST", "/v1/session", {
    body: { user: "alice", password: "wrong password!" },
  });
  assert.equal(wrong.status, 401);
  const audit = await server.ctx.store.listAudit({ limit: 50 });
  const logins = audit.filter((e) => e.action === "session.login");
  assert.deepEqual(
    logins.map((e) => [e.actor, e.outcome, e.target]),
    [
      ["anonymous", "refused", "user:alice"],
      ["user:alice", "ok", "user:alice"],
    ],
  );
  assert.match(logins[0]?.reason ?? "", /^LOGIN_FAILED: /);
  assert.match(
    String((logins[1]?.detail as { remote?: string } | undefined)?.remote),
    /^(::ffff:)?127\.0\.0\.1$/,
  );
  // a login over a session the browser still holds ends that one
  const relogin = await login(server, { user: "alice", password }, cookie(session));
  assert.notEqual(relogin.secret, session.secret);
  assert.equal((await call(server, "GET", "/v1/session", { headers: cookie(session) })).status, 401);
  assert.equal((await call(server, "GET", "/v1/session", { headers: cookie(relogin) })).status, 200);
  const text = JSON.stringify(audit);
  assert.ok(!text.includes(password) && !text.includes("wrong password!"), "no password in the audit log");
  assert.ok(
    !text.includes(session.secret) && !text.includes(session.csrf),
    "no session secret in the audit log",
  );
});

test("a change made with a cookie needs the session's CSRF token and the server's own Origin; a bearer needs neither", async (t) => {
  const server = await start(t);
  const session = await login(server, { token: server.adminToken });
  const deploy = (headers: Record<string, string>, token?: string) =>
    call(server, "POST", "/v1/test/web/deploy", {
      body: { app: "shop" },
      headers,
      ...(token ? { token } : {}),
    });
  const host = new URL(server.url).host;

  for (const headers of [
    cookie(session),
    cookie(session, { "x-galley-csrf": "" }),
    cookie(session, { "x-galley-csrf": (session.csrf.startsWith("A") ? "B" : "A") + session.csrf.slice(1) }),
    cookie(session, { "x-galley-csrf": `${session.csrf}x` }),
    cookie(session, { "x-galley-csrf": session.csrf, origin: "https://evil.example" }),
    cookie(session, { "x-galley-csrf": session.csrf, origin: "null" }),
    cookie(session, { "x-galley-csrf": session.csrf, origin: `https://${host.replace(/:\d+$/, ":1")}` }),
  ]) {
    const refused = await deploy(headers);
    assert.deepEqual([refused.status, code(refused)], [403, "CSRF_REFUSED"], JSON.stringify(headers));
  }
  const ok = await deploy(cookie(session, { "x-galley-csrf": session.csrf }));
  assert.deepEqual([ok.status, ok.json], [201, { deployed: "shop" }]);
  const sameOrigin = await deploy(
    cookie(session, { "x-galley-csrf": session.csrf, origin: `https://${host}` }),
  );
  assert.equal(sameOrigin.status, 201, sameOrigin.text);
  // reads need no CSRF token
  assert.equal((await call(server, "GET", "/v1/test/web", { headers: cookie(session) })).status, 200);
  // a bearer header wins over the cookie and needs no CSRF token
  const bearer = await deploy(cookie(session), server.adminToken);
  assert.equal(bearer.status, 201, bearer.text);
  const refusals = (await server.ctx.store.listAudit({ outcome: "refused", limit: 50 })).filter((e) =>
    e.reason?.startsWith("CSRF_REFUSED"),
  );
  assert.equal(refusals.length, 7);
  assert.equal(refusals[0]?.actor, "token:admin");
  // a login from another origin is refused too (login CSRF)
  const foreign = await call(server, "POST", "/v1/session", {
    body: { token: server.adminToken },
    headers: { origin: "https://evil.example" },
  });
  assert.deepEqual([foreign.status, code(foreign)], [403, "CSRF_REFUSED"]);
});

test("a wrong password, an unknown user and an unknown token get the same 401", async (t) => {
  const server = await start(t);
  await addUser(server, "alice", [{ stack: "web", role: "viewer" }]);
  const wrong = await call(server, "POST", "/v1/session", {
    body: { user: "alice", password: "not the password" },
  });
  const unknown = await call(server, "POST", "/v1/session", { body: { user: "mallory", password } });
  const token = await call(server, "POST", "/v1/session", { body: { token: "galley_nope" } });
  assert.equal(wrong.status, 401);
  assert.equal(code(wrong), "LOGIN_FAILED");
  assert.equal(unknown.text, wrong.text);
  assert.equal(token.text, wrong.text);
  assert.equal(unknown.headers["set-cookie"], undefined);
  const bad = await call(server, "POST", "/v1/session", { body: { user: "alice" } });
  assert.equal(bad.status, 400);
  // a malformed login never quotes what was sent, in its answer or in the audit log
  for (const body of [
    "galley_pasted-as-a-string",
    { token: 12345678901 },
    { user: "alice", password: 12345678901 },
    { user: "alice", password: "secret-in-a-bad-body", extra: 1 },
  ]) {
    const refused = await call(server, "POST", "/v1/session", { body });
    assert.equal(refused.status, 400);
    assert.doesNotMatch(refused.text, /pasted|12345678901|secret-in/);
  }
  const users = await call(server, "POST", "/v1/users", {
    token: server.adminToken,
    body: { name: "zed", password: 12345678901, grants: [{ stack: "web", role: "viewer" }] },
  });
  assert.equal(users.status, 400);
  assert.doesNotMatch(users.text, /12345678901/);
  const audit = JSON.stringify(await server.ctx.store.listAudit({ limit: 100 }));
  assert.doesNotMatch(audit, /pasted|12345678901|secret-in/);
});

test("5 failed logins within 15 minutes for a user name, or from an address, answer 429 even to the right password", async (t) => {
  const server = await start(t);
  await addUser(server, "alice", [{ stack: "web", role: "viewer" }]);
  await addUser(server, "bob", [{ stack: "web", role: "viewer" }]);
  for (let i = 0; i < 5; i++) {
    const failed = await call(server, "POST", "/v1/session", {
      body: { user: `nobody${i}`, password: "guess guess guess" },
    });
    assert.equal(failed.status, 401);
  }
  // the address had 5 failures: every login from it waits, whoever it names
  const throttled = await call(server, "POST", "/v1/session", { body: { user: "alice", password } });
  assert.deepEqual([throttled.status, code(throttled)], [429, "LOGIN_THROTTLED"]);
  assert.match(throttled.text, /try again in 15 min/);
  const retry = Number(throttled.headers["retry-after"]);
  assert.ok(retry > 14 * 60 && retry <= 15 * 60, `Retry-After: ${retry}`);
  const byToken = await call(server, "POST", "/v1/session", { body: { token: server.adminToken } });
  assert.equal(byToken.status, 429);
  const audit = await server.ctx.store.listAudit({ outcome: "refused", limit: 50 });
  assert.equal(audit.filter((e) => e.reason?.startsWith("LOGIN_THROTTLED")).length, 2);
  // guesses sent in parallel are counted as they start: no more than 5 get through to a check
  const fresh = await start(t);
  const guesses = await Promise.all(
    Array.from({ length: 12 }, () =>
      call(fresh, "POST", "/v1/session", { body: { user: "root", password: "guess guess guess" } }),
    ),
  );
  assert.deepEqual(guesses.map((g) => g.status).sort(), [...Array(5).fill(401), ...Array(7).fill(429)]);
  // sessions already open go on
  assert.equal((await call(server, "GET", "/v1/session", { token: server.adminToken })).status, 200);
});

test("logging out ends the session and clears the cookie", async (t) => {
  const server = await start(t);
  const session = await login(server, { token: server.adminToken });
  const noCsrf = await call(server, "DELETE", "/v1/session", { headers: cookie(session) });
  assert.equal(noCsrf.status, 403);
  const out = await call(server, "DELETE", "/v1/session", {
    headers: cookie(session, { "x-galley-csrf": session.csrf }),
  });
  assert.deepEqual([out.status, out.json], [200, {}]);
  assert.deepEqual(out.headers["set-cookie"], [
    `${sessionCookie}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`,
  ]);
  const after = await call(server, "GET", "/v1/session", { headers: cookie(session) });
  assert.deepEqual([after.status, code(after)], [401, "UNAUTHORIZED"]);
  const audit = await server.ctx.store.listAudit({ outcome: "ok", limit: 10 });
  assert.ok(audit.some((e) => e.action === "session.logout" && e.actor === "token:admin"));
});

test("revoking a token ends its sessions; deleting a user ends theirs; a password change ends the others", async (t) => {
  const server = await start(t);
  const minted = await call(server, "POST", "/v1/tokens", {
    token: server.adminToken,
    body: { name: "ci", grants: [{ stack: "web", role: "viewer" }] },
  });
  const { token, secret } = minted.json as { token: { id: string }; secret: string };
  const bySecret = await login(server, { token: secret });
  const revoked = await call(server, "DELETE", `/v1/tokens/${token.id}`, { token: server.adminToken });
  assert.equal(revoked.status, 200);
  assert.equal((await call(server, "GET", "/v1/session", { headers: cookie(bySecret) })).status, 401);
  const now = new Date().toISOString();
  assert.equal(await server.ctx.store.sessionByHash(sessionHash(bySecret.secret), now), undefined);
  const again = await call(server, "POST", "/v1/session", { body: { token: secret } });
  assert.equal(code(again), "LOGIN_FAILED");

  await addUser(server, "bob", [{ stack: "web", role: "viewer" }]);
  const bob = await login(server, { user: "bob", password });
  assert.equal((await call(server, "DELETE", "/v1/users/bob", { token: server.adminToken })).status, 200);
  assert.equal((await call(server, "GET", "/v1/session", { headers: cookie(bob) })).status, 401);
  assert.equal((await call(server, "DELETE", "/v1/users/bob", { token: server.adminToken })).status, 404);

  await addUser(server, "carol", [{ stack: "web", role: "viewer" }]);
  const laptop = await login(server, { user: "carol", password });
  const phone = await login(server, { user: "carol", password });
  const newPassword = "a brand new passphrase";
  const wrongCurrent = await call(server, "POST", "/v1/session/password", {
    headers: cookie(laptop, { "x-galley-csrf": laptop.csrf }),
    body: { current: "not my password", password: newPassword },
  });
  assert.equal(wrongCurrent.status, 403);
  const short = await call(server, "POST", "/v1/session/password", {
    headers: cookie(laptop, { "x-galley-csrf": laptop.csrf }),
    body: { current: password, password: "short" },
  });
  assert.deepEqual([short.status, code(short)], [400, "REQUEST_INVALID"]);
  const changed = await call(server, "POST", "/v1/session/password", {
    headers: cookie(laptop, { "x-galley-csrf": laptop.csrf }),
    body: { current: password, password: newPassword },
  });
  assert.equal(changed.status, 200, changed.text);
  const renewed = /=([A-Za-z0-9_-]{43});/.exec(String(changed.headers["set-cookie"]))?.[1] ?? "";
  assert.notEqual(renewed, laptop.secret);
  assert.equal((await call(server, "GET", "/v1/session", { headers: cookie(phone) })).status, 401);
  assert.equal((await call(server, "GET", "/v1/session", { headers: cookie(laptop) })).status, 401);
  assert.equal(
    (await call(server, "GET", "/v1/session", { headers: cookie({ secret: renewed }) })).status,
    200,
  );
  assert.equal(
    (await call(server, "POST", "/v1/session", { body: { user: "carol", password } })).status,
    401,
  );
  await login(server, { user: "carol", password: newPassword });
  // a token's session has no password to change
  const admin = await login(server, { token: server.adminToken });
  const tokenChange = await call(server, "POST", "/v1/session/password", {
    headers: cookie(admin, { "x-galley-csrf": admin.csrf }),
    body: { current: "x", password: newPassword },
  });
  assert.equal(tokenChange.status, 403);
});

test("an expired session is refused; a used one slides, up to 7 days from its creation", async (t) => {
  const server = await start(t);
  await addUser(server, "dave", [{ stack: "*", role: "viewer" }]);
  const store = server.ctx.store;
  const secret = "E".repeat(43);
  await store.createSession({
    hash: sessionHash(secret),
    actor: { kind: "user", name: "dave" },
    csrf: "c".repeat(43),
    expiresAt: new Date(Date.now() - 1000).toISOString(),
  });
  const expired = await call(server, "GET", "/v1/session", { headers: cookie({ secret }) });
  assert.deepEqual([expired.status, code(expired)], [401, "UNAUTHORIZED"]);

  const session = await login(server, { user: "dave", password });
  const hash = sessionHash(session.secret);
  // used within a minute of its last use: not written again
  const fresh = await store.sessionByHash(hash, new Date().toISOString());
  await call(server, "GET", "/v1/session", { headers: cookie(session) });
  assert.deepEqual(await store.sessionByHash(hash, new Date().toISOString()), fresh);
  // last seen two hours ago, expiring in ten: this use moves the expiry to 12 hours from now
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000).toISOString();
  await store.touchSession(hash, twoHoursAgo, new Date(Date.now() + 10 * 3_600_000).toISOString());
  const used = await call(server, "GET", "/v1/session", { headers: cookie(session) });
  const hours = (Date.parse((used.json as Session["body"]).expiresAt) - Date.now()) / 3_600_000;
  assert.ok(hours > 11.9 && hours <= 12, `expires in ${hours} h`);
  const record = await store.sessionByHash(hash, new Date().toISOString());
  assert.equal(record?.expiresAt, (used.json as Session["body"]).expiresAt);
  assert.notEqual(record?.lastSeenAt, twoHoursAgo);

  // a session opened with a token ends when the token expires
  const { secret: shortLived } = await mintToken(store, {
    name: "brief",
    grants: [{ stack: "web", role: "viewer" }],
    expiresAt: new Date(Date.now() + 1500).toISOString(),
  });
  const byToken = await login(server, { token: shortLived });
  assert.equal((await call(server, "GET", "/v1/test/web", { headers: cookie(byToken) })).status, 200);
  await new Promise((resolve) => setTimeout(resolve, 1600));
  assert.equal((await call(server, "GET", "/v1/test/web", { headers: cookie(byToken) })).status, 401);
  // a bad Authorization header is refused even beside a good cookie: the header wins
  const both = await call(server, "GET", "/v1/session", {
    headers: { ...cookie(session), authorization: "Bearer nope" },
  });
  assert.equal(both.status, 401);
});

test("a user's grants apply to their session: a viewer is refused a deployer's change; new grants apply at once", async (t) => {
  const server = await start(t);
  await addUser(server, "erin", [{ stack: "web", role: "viewer" }]);
  const session = await login(server, { user: "erin", password });
  const headers = cookie(session, { "x-galley-csrf": session.csrf });
  const refused = await call(server, "POST", "/v1/test/web/deploy", { body: { app: "shop" }, headers });
  assert.deepEqual([refused.status, code(refused)], [403, "FORBIDDEN"]);
  assert.match(refused.text, /user erin is not deployer on stack web/);
  assert.equal((await call(server, "GET", "/v1/test/web", { headers })).status, 200);
  assert.equal((await call(server, "GET", "/v1/test/shop", { headers })).status, 403);
  assert.equal((await call(server, "GET", "/v1/users", { headers })).status, 403);
  const audit = await server.ctx.store.listAudit({ outcome: "refused", limit: 10 });
  assert.ok(audit.some((e) => e.actor === "user:erin" && e.reason?.startsWith("FORBIDDEN")));

  const patched = await call(server, "PATCH", "/v1/users/erin", {
    token: server.adminToken,
    body: { grants: [{ stack: "web", role: "deployer" }] },
  });
  assert.equal(patched.status, 200, patched.text);
  const allowed = await call(server, "POST", "/v1/test/web/deploy", { body: { app: "shop" }, headers });
  assert.equal(allowed.status, 201, allowed.text);
  const ok = await server.ctx.store.listAudit({ outcome: "ok", limit: 10 });
  assert.ok(ok.some((e) => e.actor === "user:erin" && e.action === "test.deploy"));
});

test("users: names and passwords are checked; only an admin on * manages them", async (t) => {
  const server = await start(t);
  const post = (body: unknown, token = server.adminToken) =>
    call(server, "POST", "/v1/users", { token, body });
  const grants = [{ stack: "web", role: "viewer" }];
  assert.equal((await post({ name: "frank", password: "too short", grants })).status, 400);
  assert.equal((await post({ name: "no spaces", password, grants })).status, 400);
  assert.equal((await post({ name: "x".repeat(65), password, grants })).status, 400);
  assert.equal((await post({ name: "frank", password, grants: [] })).status, 400);
  assert.equal((await post({ name: "frank@example.com", password, grants })).status, 201);
  const twice = await post({ name: "frank@example.com", password, grants });
  assert.deepEqual([twice.status, code(twice)], [409, "STATE_INVALID"]);
  const minted = await call(server, "POST", "/v1/tokens", {
    token: server.adminToken,
    body: { name: "web-admin", grants: [{ stack: "web", role: "admin" }] },
  });
  const webAdmin = (minted.json as { secret: string }).secret;
  assert.equal((await post({ name: "gina", password, grants }, webAdmin)).status, 403);
  assert.equal((await call(server, "GET", "/v1/users", { token: webAdmin })).status, 403);
  const reset = await call(server, "PATCH", "/v1/users/frank@example.com", {
    token: server.adminToken,
    body: { password: "another long passphrase" },
  });
  assert.equal(reset.status, 200);
  await login(server, { user: "frank@example.com", password: "another long passphrase" });
  assert.equal(
    (await call(server, "PATCH", "/v1/users/nobody", { token: server.adminToken, body: {} })).status,
    404,
  );
  // an admin user manages users from the panel: with the cookie and its CSRF token
  await addUser(server, "root@example.com", [{ stack: "*", role: "admin" }]);
  const root = await login(server, { user: "root@example.com", password });
  const headers = cookie(root, { "x-galley-csrf": root.csrf });
  const made = await call(server, "POST", "/v1/users", { headers, body: { name: "hal", password, grants } });
  assert.equal(made.status, 201, made.text);
  const changed = await call(server, "POST", "/v1/session/password", {
    headers,
    body: { current: password, password: "root's new passphrase" },
  });
  assert.equal(changed.status, 200);
  const entries = await server.ctx.store.listAudit({ limit: 50 });
  const byRoot = entries.filter((e) => e.actor === "user:root@example.com").map((e) => [e.action, e.target]);
  assert.deepEqual(byRoot, [
    ["user.password", "user:root@example.com"],
    ["user.create", "user:hal"],
    ["session.login", "user:root@example.com"],
  ]);
  const audit = JSON.stringify(entries);
  assert.ok(
    !audit.includes(password) && !audit.includes("another long passphrase") && !audit.includes("root's new"),
  );
  assert.match(audit, /"action":"user.create"/);
});

test("the whole server: a viewer user lists only their stacks and is refused a deployer's route", async (t) => {
  const kitchen = mkdtempSync(path.join(tmpdir(), "galley-session-whole-"));
  t.after(() => rmSync(kitchen, { recursive: true, force: true }));
  mkdirSync(path.join(kitchen, "stacks"));
  for (const name of ["web", "db"])
    writeFileSync(path.join(kitchen, "stacks", `${name}.yaml`), `name: ${name}\n`);
  const server = await testServer(t, { kitchen, whole: true });
  await addUser(server, "viv", [{ stack: "web", role: "viewer" }]);
  const session = await login(server, { user: "viv", password });
  const headers = cookie(session, { "x-galley-csrf": session.csrf });
  const stacks = await call(server, "GET", "/v1/stacks", { headers });
  assert.deepEqual(stacks.json, { stacks: [{ name: "web", file: "stacks/web.yaml" }] });
  const run = await call(server, "POST", "/v1/stacks/web/events", { headers, body: { kind: "configure" } });
  assert.deepEqual([run.status, code(run)], [403, "FORBIDDEN"]);
  assert.match(run.text, /user viv is not deployer on stack web/);
  const agents = await call(server, "GET", "/v1/agents", { headers });
  assert.deepEqual([agents.status, agents.json], [200, { agents: [] }]);
  const other = await call(server, "GET", "/v1/stacks/db/events", { headers });
  assert.equal(other.status, 403);
});

test("the panel's probe (GET /v1/session with no credential) is not an audited refusal; a dead cookie is", async (t) => {
  const server = await testServer(t);
  const before = (await server.ctx.store.listAudit({ limit: 100 })).length;
  const probe = await call(server, "GET", "/v1/session");
  assert.equal(probe.status, 401);
  assert.equal((await server.ctx.store.listAudit({ limit: 100 })).length, before, "nothing audited");
  const dead = await call(server, "GET", "/v1/session", {
    headers: { cookie: `__Host-galley_session=${"x".repeat(43)}` },
  });
  assert.equal(dead.status, 401);
  const audit = await server.ctx.store.listAudit({ limit: 100 });
  assert.equal(audit.length, before + 1);
  assert.equal(audit[0]?.outcome, "refused");
});
