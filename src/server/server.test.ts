import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import type { Registrar } from "./app.ts";
import { mintToken } from "./auth.ts";
import { defineRoute } from "./openapi.ts";
import { startServer } from "./server.ts";
import { call, testServer } from "./test-support.ts";
import { caFingerprint, ensureTls } from "./tls.ts";

/** Two routes of a stack: one to read (viewer), one to change (deployer). */
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

test("a client pinning the server's CA gets in; one pinning another CA is refused", async (t) => {
  const server = await testServer(t);
  const health = await call(server, "GET", "/v1/health");
  assert.equal(health.status, 200);
  assert.deepEqual((health.json as { ok: boolean }).ok, true);
  const other = mkdtempSync(path.join(tmpdir(), "galley-other-ca-"));
  t.after(() => rmSync(other, { recursive: true, force: true }));
  const otherCa = (await ensureTls(other, ["localhost"])).caPem;
  assert.notEqual(caFingerprint(otherCa), server.caFingerprint);
  await assert.rejects(
    call(server, "GET", "/v1/health", { ca: otherCa }),
    /self-signed|unable to verify|certificate/i,
  );
  const pem = await call(server, "GET", "/v1/ca.pem");
  assert.equal(pem.status, 200);
  assert.equal(caFingerprint(pem.text), server.caFingerprint);
});

test("a restarted server keeps its CA, its tokens and its first admin token; keys are private", async (t) => {
  const kitchen = mkdtempSync(path.join(tmpdir(), "galley-restart-"));
  t.after(() => rmSync(kitchen, { recursive: true, force: true }));
  const first = await startServer({ kitchen, log: () => {} });
  const { secret } = await mintToken(first.ctx.store, {
    name: "ci",
    grants: [{ stack: "web", role: "viewer" }],
  });
  const fingerprint = first.caFingerprint;
  await first.close();
  for (const file of ["ca.key", "server.key", "ca.pem", "server.pem"])
    assert.equal(statSync(path.join(kitchen, ".galley/server/tls", file)).mode & 0o777, 0o600, file);
  assert.equal(statSync(first.adminTokenFile).mode & 0o777, 0o600);
  const second = await testServer(t, { kitchen, sans: ["galley.example.test"] });
  assert.equal(second.caFingerprint, fingerprint);
  assert.equal((await second.ctx.store.listTokens()).length, 2, "no second admin token");
  const reply = await call(second, "GET", "/v1/test/web", { token: secret });
  assert.equal(reply.status, 404, "the token is known (only the route is missing)");
  assert.equal((await call(second, "GET", "/v1/tokens", { token: second.adminToken })).status, 200);
});

test("roles: a viewer reads and cannot deploy; a grant on stack a is refused on stack b; admin does all", async (t) => {
  const server = await testServer(t, { routes: [stackRoutes] });
  const store = server.ctx.store;
  const viewer = (await mintToken(store, { name: "viewer-a", grants: [{ stack: "a", role: "viewer" }] }))
    .secret;
  const deployer = (
    await mintToken(store, { name: "deployer-a", grants: [{ stack: "a", role: "deployer" }] })
  ).secret;
  const deploy = { body: { app: "web" } };
  assert.equal((await call(server, "GET", "/v1/test/a", { token: viewer })).status, 200);
  const refused = await call(server, "POST", "/v1/test/a/deploy", { token: viewer, ...deploy });
  assert.equal(refused.status, 403);
  assert.equal((refused.json as { error: { code: string } }).error.code, "FORBIDDEN");
  assert.equal((await call(server, "POST", "/v1/test/a/deploy", { token: deployer, ...deploy })).status, 201);
  assert.equal((await call(server, "GET", "/v1/test/b", { token: deployer })).status, 403);
  assert.equal((await call(server, "POST", "/v1/test/b/deploy", { token: deployer, ...deploy })).status, 403);
  assert.equal(
    (await call(server, "POST", "/v1/test/b/deploy", { token: server.adminToken, ...deploy })).status,
    201,
  );
  assert.equal(
    (await call(server, "GET", "/v1/tokens", { token: deployer })).status,
    403,
    "tokens need admin on *",
  );
  // the audit: the deploys, ok or refused with the reason, stack and actor
  const audit = (await store.listAudit({ stack: "b" })).map((e) => [e.actor, e.action, e.outcome]);
  assert.deepEqual(audit, [
    ["token:admin", "test.deploy", "ok"],
    ["token:deployer-a", "test.deploy", "refused"],
    ["token:deployer-a", "GET /v1/test/:stack", "refused"],
  ]);
  // a viewer of a reads a's audit, not b's nor all of it
  assert.equal((await call(server, "GET", "/v1/audit?stack=a", { token: viewer })).status, 200);
  assert.equal((await call(server, "GET", "/v1/audit?stack=b", { token: viewer })).status, 403);
  assert.equal((await call(server, "GET", "/v1/audit", { token: viewer })).status, 403);
  const all = await call(server, "GET", "/v1/audit?limit=500", { token: server.adminToken });
  assert.equal(all.status, 200);
  assert.ok((all.json as unknown[]).length >= 6);
});

test("wrong, expired and revoked tokens are refused (401) and audited, and no secret reaches the audit", async (t) => {
  const server = await testServer(t, { routes: [stackRoutes] });
  const store = server.ctx.store;
  const expired = await mintToken(store, {
    name: "old",
    grants: [{ stack: "*", role: "admin" }],
    expiresAt: new Date(Date.now() - 60_000).toISOString(),
  });
  const revoked = await mintToken(store, { name: "gone", grants: [{ stack: "*", role: "admin" }] });
  const created = await call(server, "POST", "/v1/tokens", {
    token: server.adminToken,
    body: { name: "ci", grants: [{ stack: "a", role: "deployer" }] },
  });
  assert.equal(created.status, 201);
  const ci = created.json as { token: { id: string }; secret: string };
  const [createdEntry] = await store.listAudit({ limit: 1 });
  assert.equal(createdEntry?.action, "token.create");
  assert.equal(createdEntry?.target, ci.token.id);
  assert.deepEqual(createdEntry?.detail, { name: "ci", grants: [{ stack: "a", role: "deployer" }] });
  const revokedReply = await call(server, "DELETE", `/v1/tokens/${revoked.record.id}`, {
    token: server.adminToken,
  });
  assert.equal(revokedReply.status, 200);
  assert.ok((revokedReply.json as { revokedAt?: string }).revokedAt);
  const secrets = [server.adminToken, expired.secret, revoked.secret, ci.secret, "galley_not-a-token"];
  for (const [token, why] of [
    ["galley_not-a-token", /not known/],
    [expired.secret, /expired/],
    [revoked.secret, /revoked/],
  ] as const) {
    const reply = await call(server, "POST", "/v1/test/a/deploy", { token, body: { app: "web" } });
    assert.equal(reply.status, 401, String(why));
    const body = reply.json as { error: { code: string; message: string } };
    assert.equal(body.error.code, "UNAUTHORIZED");
    assert.match(body.error.message, why);
  }
  assert.equal(
    (await call(server, "GET", "/v1/health", { headers: { authorization: "Basic abc" } })).status,
    200,
    "none-auth routes ignore the header",
  );
  assert.equal(
    (await call(server, "GET", "/v1/tokens", { headers: { authorization: "Basic abc" } })).status,
    401,
  );
  assert.equal(
    (await call(server, "POST", "/v1/test/a/deploy", { token: ci.secret, body: { app: "web" } })).status,
    201,
  );
  const refusals = await store.listAudit({ outcome: "refused" });
  assert.equal(refusals.length, 4);
  assert.deepEqual(
    refusals.map((e) => e.reason?.replace(/:.*/, "")),
    ["UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED", "UNAUTHORIZED"],
  );
  const everything = JSON.stringify(await store.listAudit({ limit: 1000 }));
  for (const secret of secrets) assert.ok(!everything.includes(secret), "a secret in the audit log");
  const tokens = await call(server, "GET", "/v1/tokens", { token: server.adminToken });
  for (const secret of secrets) assert.ok(!tokens.text.includes(secret), "a secret in GET /v1/tokens");
  assert.ok(tokens.text.includes('"lastUsedAt"'));
});

test("the OpenAPI document lists every declared route with its schemas", async (t) => {
  const server = await testServer(t, { routes: [stackRoutes] });
  const reply = await call(server, "GET", "/v1/openapi.json");
  assert.equal(reply.status, 200);
  const doc = reply.json as {
    openapi: string;
    paths: Record<
      string,
      Record<string, { requestBody?: unknown; parameters: { name: string }[]; "x-galley-role"?: string }>
    >;
  };
  assert.equal(doc.openapi, "3.1.0");
  for (const p of [
    "/v1/health",
    "/v1/openapi.json",
    "/v1/ca.pem",
    "/v1/tokens",
    "/v1/tokens/{id}",
    "/v1/audit",
    "/v1/test/{stack}",
    "/v1/test/{stack}/deploy",
  ])
    assert.ok(doc.paths[p], p);
  for (const [p, operations] of Object.entries(doc.paths))
    for (const [method, operation] of Object.entries(operations)) {
      const wanted = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const have = operation.parameters
        .filter((x) => (x as { in?: string }).in === "path")
        .map((x) => x.name);
      assert.deepEqual(have, wanted, `${method} ${p}: every path parameter is declared`);
    }
  const deploy = doc.paths["/v1/test/{stack}/deploy"]?.post;
  assert.equal(deploy?.["x-galley-role"], "deployer");
  assert.deepEqual(
    deploy?.parameters.map((p) => p.name),
    ["stack"],
  );
  assert.deepEqual(deploy?.requestBody, {
    required: true,
    content: {
      "application/json": {
        schema: {
          type: "object",
          properties: { app: { type: "string" } },
          required: ["app"],
          additionalProperties: false,
        },
      },
    },
  });
});

test("errors: a bug is a bare 500 INTERNAL (its details only in the log); agent routes want a session", async (t) => {
  const logged: string[] = [];
  const broken: Registrar = (app, ctx) => {
    defineRoute(
      app,
      ctx,
      { method: "get", path: "/v1/test/broken", summary: "fails", auth: "none", response: v.object({}) },
      () => {
        throw new Error("internal detail /var/lib/secret-place");
      },
    );
    defineRoute(
      app,
      ctx,
      {
        method: "get",
        path: "/v1/test/agent",
        summary: "agents only",
        auth: "agent",
        response: v.object({}),
      },
      () => ({}),
    );
  };
  const server = await testServer(t, { routes: [broken], log: (line) => logged.push(line) });
  const reply = await call(server, "GET", "/v1/test/broken");
  assert.equal(reply.status, 500);
  assert.deepEqual((reply.json as { error: { code: string } }).error.code, "INTERNAL");
  assert.ok(!reply.text.includes("secret-place"));
  assert.ok(!reply.text.includes(" at "));
  assert.ok(logged.some((line) => line.includes("internal detail /var/lib/secret-place")));
  const anonymous = await call(server, "GET", "/v1/test/agent");
  assert.equal(anonymous.status, 401);
  assert.equal(
    (await call(server, "GET", "/v1/test/agent", { token: server.adminToken })).status,
    401,
    "a token is not an agent",
  );
  assert.equal(
    (await call(server, "GET", "/v1/test/agent", { headers: { authorization: "Agent nope" } })).status,
    401,
  );
  const wrongType = await call(server, "POST", "/v1/tokens", {
    token: server.adminToken,
    raw: '{"name":"x","grants":[{"stack":"a","role":"viewer"}]}',
    headers: { "content-type": "text/plain" },
  });
  assert.equal(wrongType.status, 400);
  assert.match((wrongType.json as { error: { message: string } }).error.message, /application\/json/);
  const tooBig = await call(server, "POST", "/v1/tokens", {
    token: server.adminToken,
    body: { name: "x".repeat(1024 * 1024) },
  });
  assert.equal(tooBig.status, 413);
  assert.equal((tooBig.json as { error: { code: string } }).error.code, "REQUEST_TOO_LARGE");
});

test("services run beside the API and stop on close; a port in use is ARGS_INVALID", async (t) => {
  const events: string[] = [];
  const server = await testServer(t, {
    services: [
      (ctx) => {
        events.push(`start ${ctx.id === undefined ? "?" : "ctx"}`);
        return { stop: async () => void events.push("stop") };
      },
    ],
  });
  assert.deepEqual(events, ["start ctx"]);
  await assert.rejects(
    startServer({ kitchen: server.kitchen, listen: `127.0.0.1:${server.port}`, log: () => {} }),
    (error: Error & { code?: string }) => error.code === "ARGS_INVALID" && /in use/.test(error.message),
  );
  assert.equal((await call(server, "GET", "/v1/health")).status, 200, "the first server still answers");
  await server.close();
  assert.deepEqual(events, ["start ctx", "stop"]);
});
