import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import type { Grant } from "../../store/store.ts";
import { mintToken } from "../auth.ts";
import { hashPassword } from "../users.ts";
import { call, type Reply, testServer } from "../test-support.ts";

// POST /v1/stacks/:stack/clone (galley stack clone through the server), and stack actions asked
// with { "wait": false }: 202 with the first event's id, run on in the background. The stacks'
// instances are SSH ones in a layer without recipes: their events settle without reaching a host.

const code = (reply: Reply) => (reply.json as { error?: { code: string } }).error?.code;
const message = (reply: Reply) => (reply.json as { error?: { message: string } }).error?.message ?? "";

test("stack clone over the API: admin on both stacks, an existing name refused, a clash removed, audited", async (t) => {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  const store = server.ctx.store;
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  const alphaText = `# the production stack
name: alpha
cookbooks: ../cookbooks
layers:
  - name: app # the app servers
instances:
  - { name: a1, layers: [app] }
  - { name: a2, layers: [app] }
  - { name: s1, layers: [app], provider: { type: ssh, address: 10.0.0.5 } }
`;
  await fs.writeFile(path.join(kitchen, "stacks", "alpha.yaml"), alphaText);
  await fs.writeFile(
    path.join(kitchen, "stacks", "beta.yaml"),
    "name: beta\ncookbooks: ../cookbooks\nlayers:\n  - name: app\n",
  );
  const mint = async (name: string, grants: Grant[]) => (await mintToken(store, { name, grants })).secret;
  const admin = server.adminToken;
  const alphaAdmin = await mint("alpha-admin", [{ stack: "alpha", role: "admin" }]);
  const both = await mint("alpha-and-staging-admin", [
    { stack: "alpha", role: "admin" },
    { stack: "staging", role: "admin" },
  ]);
  const deployer = await mint("alpha-deployer", [
    { stack: "alpha", role: "deployer" },
    { stack: "qa", role: "admin" },
  ]);
  const viewer = await mint("alpha-viewer", [{ stack: "alpha", role: "viewer" }]);
  const clone = (token: string | undefined, body: unknown, from = "alpha") =>
    call(server, "POST", `/v1/stacks/${from}/clone`, {
      ...(token === undefined ? {} : { token }),
      ...(body === undefined ? {} : { body }),
    });

  const doc = (await call(server, "GET", "/v1/openapi.json")).json as {
    paths: Record<string, Record<string, { "x-galley-role"?: string }>>;
  };
  assert.equal(doc.paths["/v1/stacks/{stack}/clone"]?.post?.["x-galley-role"], "admin");

  // admin on alpha and on the new name: the copy, renamed, SSH instances left out, comments kept
  const made = await clone(both, { name: "staging" });
  assert.equal(made.status, 201, made.text);
  assert.deepEqual(made.json, {
    name: "staging",
    file: "stacks/staging.yaml",
    from: "stacks/alpha.yaml",
    instances: { a1: "staging-a1", a2: "staging-a2" },
    leftOut: ["s1 (10.0.0.5)"],
  });
  const copy = await fs.readFile(path.join(kitchen, "stacks", "staging.yaml"), "utf8");
  assert.match(copy, /^# the production stack\nname: staging\n/);
  assert.match(copy, /# the app servers/);
  assert.doesNotMatch(copy, /s1|10\.0\.0\.5/);
  const listed = await call(server, "GET", "/v1/stacks/staging/summary", { token: both });
  assert.deepEqual(
    (listed.json as { instances: { name: string }[] }).instances.map((i) => i.name),
    ["staging-a1", "staging-a2"],
  );
  const [audited] = await store.listAudit({ stack: "alpha", outcome: "ok" });
  assert.deepEqual(
    [audited?.action, audited?.actor, audited?.target, audited?.detail],
    ["stack.clone", "token:alpha-and-staging-admin", "staging", { from: "alpha" }],
  );

  // a name the server serves already: 409, and the file is unchanged
  const beta = await fs.readFile(path.join(kitchen, "stacks", "beta.yaml"), "utf8");
  for (const name of ["beta", "staging", "alpha"]) {
    const taken = await clone(admin, { name });
    assert.deepEqual([taken.status, code(taken)], [409, "STATE_INVALID"], `${name}: ${taken.text}`);
    assert.match(message(taken), new RegExp(`has a stack ${name} already`));
  }
  assert.equal(await fs.readFile(path.join(kitchen, "stacks", "beta.yaml"), "utf8"), beta);

  // a clone whose instance names another stack has: refused as the server opens stacks, nothing left
  await store.saveStack("other", { name: "other" });
  await store.upsertInstance({ stack: "other", name: "clash-a1", layers: ["app"], provider: "container" });
  const clash = await clone(admin, { name: "clash" });
  assert.deepEqual([clash.status, code(clash)], [422, "STACK_INVALID"], clash.text);
  assert.match(message(clash), /clash-a1 is also an instance of stack other/);
  assert.doesNotMatch(clash.text, new RegExp(kitchen), "no server path");
  await assert.rejects(fs.stat(path.join(kitchen, "stacks", "clash.yaml")), /ENOENT/);

  // authorization: admin on the source AND the new name
  for (const [token, name, why] of [
    [alphaAdmin, "qa", "admin on alpha, nothing on qa"],
    [deployer, "qa", "admin on qa, deployer on alpha"],
    [viewer, "qa", "viewer"],
  ] as const) {
    const refused = await clone(token, { name });
    assert.deepEqual([refused.status, code(refused)], [403, "FORBIDDEN"], `${why}: ${refused.text}`);
    await assert.rejects(fs.stat(path.join(kitchen, "stacks", `${name}.yaml`)), /ENOENT/, why);
  }
  const otherSource = await clone(both, { name: "staging2" }, "beta");
  assert.deepEqual([otherSource.status, code(otherSource)], [403, "FORBIDDEN"]);
  assert.equal((await clone(undefined, { name: "qa" })).status, 401);
  const refusals = await store.listAudit({ outcome: "refused" });
  assert.ok(
    refusals.some((a) => a.action === "stack.clone" && a.actor === "token:alpha-admin" && a.target === "qa"),
    JSON.stringify(refusals.map((a) => [a.action, a.actor])),
  );
  // an unknown source: 404
  const unknown = await clone(admin, { name: "qa" }, "zeta");
  assert.deepEqual([unknown.status, code(unknown)], [404, "NOT_FOUND"]);

  // bad input: 400 naming the field
  for (const [body, field] of [
    [{ name: "Bad Name" }, /^body\.name: /],
    [{ name: "../../etc/passwd" }, /^body\.name: /],
    [{}, /^body\.name: /],
    [{ name: "qa", to: "/tmp/x.yaml" }, /^body\.to: /],
  ] as const) {
    const bad = await clone(admin, body);
    assert.deepEqual([bad.status, code(bad)], [400, "REQUEST_INVALID"], JSON.stringify(body));
    assert.match(message(bad), field, JSON.stringify(body));
  }
  const noBody = await clone(admin, undefined);
  assert.deepEqual([noBody.status, code(noBody)], [400, "REQUEST_INVALID"]);
  const badSource = await clone(admin, { name: "qa" }, "Alpha");
  assert.match(message(badSource), /^path\.stack: /);
});

test("{ wait: false }: up, down, start and stop answer 202 with their first event's id and run on", async (t) => {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  const store = server.ctx.store;
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  await fs.writeFile(
    path.join(kitchen, "stacks", "alpha.yaml"),
    `name: alpha
cookbooks: ../cookbooks
layers:
  - name: app
instances:
  - { name: s1, layers: [app], provider: { type: ssh, address: 127.0.0.1, port: 1 } }
  - { name: s2, layers: [app], provider: { type: ssh, address: 127.0.0.1, port: 1 } }
`,
  );
  const admin = server.adminToken;
  const deployer = (
    await mintToken(store, { name: "alpha-deployer", grants: [{ stack: "alpha", role: "deployer" }] })
  ).secret;
  const post = (urlPath: string, body?: unknown, token = admin) =>
    call(server, "POST", urlPath, { token, ...(body === undefined ? {} : { body }) });
  // waits for the background run of event `id` to end; returns the event
  const ended = async (id: number) => {
    for (let i = 0; i < 200; i++) {
      const reply = await call(server, "GET", `/v1/events/${id}`, { token: admin });
      const body = reply.json as {
        event: { kind: string; status: string };
        action?: {
          status: string;
          exitCode?: number;
          result?: { instances: { name: string; status: string }[] };
        };
      };
      if (body.action && body.action.status !== "running") return body;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.fail(`event #${id} did not end`);
  };
  const statuses = async () =>
    Object.fromEntries((await store.listInstances("alpha")).map((i) => [i.name, i.status]));

  // up: 202 with the setup event's id (the first event), then the stack is up
  const up = await post("/v1/stacks/alpha/up", { wait: false });
  assert.equal(up.status, 202, up.text);
  const { id: upId } = up.json as { id: number };
  const upEvent = await ended(upId);
  assert.deepEqual(
    [upEvent.event.kind, upEvent.action?.status, upEvent.action?.exitCode],
    ["setup", "done", 0],
  );
  assert.deepEqual(await statuses(), { s1: "online", s2: "online" });
  const audited = await store.listAudit({ stack: "alpha", outcome: "ok" });
  assert.equal(audited[0]?.action, "stack.up");

  // stop one: its shutdown event's id
  const stop = await post("/v1/stacks/alpha/instances/s1/stop", { wait: false });
  assert.equal(stop.status, 202, stop.text);
  const stopEvent = await ended((stop.json as { id: number }).id);
  assert.equal(stopEvent.event.kind, "shutdown");
  assert.deepEqual(await statuses(), { s1: "stopped", s2: "online" });

  // start one, then down
  const start = await post("/v1/stacks/alpha/instances/s1/start", { wait: false });
  assert.equal(start.status, 202, start.text);
  assert.equal((await ended((start.json as { id: number }).id)).event.kind, "setup");
  assert.deepEqual(await statuses(), { s1: "online", s2: "online" });
  const down = await post("/v1/stacks/alpha/down", { wait: false });
  assert.equal(down.status, 202, down.text);
  assert.equal((await ended((down.json as { id: number }).id)).event.kind, "shutdown");
  assert.deepEqual(await statuses(), { s1: "stopped", s2: "stopped" });

  // an action that runs no event (both are stopped: no shutdown, and no instance online to configure) answers as when waited for
  const again = await post("/v1/stacks/alpha/instances/s1/stop", { wait: false });
  assert.equal(again.status, 200, again.text);
  const nothing = again.json as { id: null; exitCode: number; outcome: { stack: string } };
  assert.deepEqual([nothing.id, nothing.exitCode, nothing.outcome.stack], [null, 0, "alpha"]);

  // the default is unchanged: no body, or wait: true, answers when done
  for (const body of [undefined, { wait: true }, {}]) {
    const waited = await post("/v1/stacks/alpha/down", body);
    assert.equal(waited.status, 200, `${JSON.stringify(body)}: ${waited.text}`);
    assert.ok(!("id" in (waited.json as object)), "the waited answer is unchanged");
    assert.equal((waited.json as { exitCode: number }).exitCode, 0);
  }

  // refusals: a deployer may not; bad bodies name the field
  const refused = await post("/v1/stacks/alpha/up", { wait: false }, deployer);
  assert.deepEqual([refused.status, code(refused)], [403, "FORBIDDEN"]);
  for (const [urlPath, body, field] of [
    ["/v1/stacks/alpha/up", { wait: "no" }, /^body\.wait: /],
    ["/v1/stacks/alpha/down", { wait: 0 }, /^body\.wait: /],
    ["/v1/stacks/alpha/instances/s1/start", { wait: false, forks: 2 }, /^body\.forks: /],
  ] as const) {
    const bad = await post(urlPath, body);
    assert.deepEqual([bad.status, code(bad)], [400, "REQUEST_INVALID"], `${urlPath} ${JSON.stringify(body)}`);
    assert.match(message(bad), field, `${urlPath}: ${message(bad)}`);
  }
  // a body that is not JSON
  const text = await call(server, "POST", "/v1/stacks/alpha/up", {
    token: admin,
    raw: "wait=false",
    headers: { "content-type": "text/plain" },
  });
  assert.deepEqual([text.status, code(text)], [400, "REQUEST_INVALID"]);
  assert.deepEqual(
    await statuses(),
    { s1: "stopped", s2: "stopped" },
    "nothing started by a refused request",
  );
});

test("a user's web session: the overview by its grants; clone and { wait: false } with the CSRF token", async (t) => {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  const store = server.ctx.store;
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  const text = (name: string) =>
    `name: ${name}\ncookbooks: ../cookbooks\nlayers:\n  - name: app\ninstances:\n  - { name: ${name}-s1, layers: [app], provider: { type: ssh, address: 127.0.0.1, port: 1 } }\n`;
  for (const name of ["alpha", "beta"])
    await fs.writeFile(path.join(kitchen, "stacks", `${name}.yaml`), text(name));
  const password = "correct horse battery staple";
  await store.createUser({
    name: "alice",
    passwordHash: await hashPassword(password),
    grants: [
      { stack: "alpha", role: "admin" },
      { stack: "alpha-copy", role: "admin" },
    ],
  });
  const login = await call(server, "POST", "/v1/session", { body: { user: "alice", password } });
  assert.equal(login.status, 201, login.text);
  const secret = /__Host-galley_session=([^;]+);/.exec(String(login.headers["set-cookie"]))?.[1];
  assert.ok(secret);
  const { csrf } = login.json as { csrf: string };
  const cookie = { cookie: `__Host-galley_session=${secret}` };

  const overview = await call(server, "GET", "/v1/overview", { headers: cookie });
  assert.equal(overview.status, 200, overview.text);
  assert.deepEqual(
    (overview.json as { stacks: { name: string }[] }).stacks.map((s) => s.name),
    ["alpha"],
  );
  assert.equal((await call(server, "GET", "/v1/stacks/beta/summary", { headers: cookie })).status, 403);

  // a change without the CSRF token is refused, and nothing is written
  const forged = await call(server, "POST", "/v1/stacks/alpha/clone", {
    headers: cookie,
    body: { name: "alpha-copy" },
  });
  assert.deepEqual([forged.status, code(forged)], [403, "CSRF_REFUSED"]);
  await assert.rejects(fs.stat(path.join(kitchen, "stacks", "alpha-copy.yaml")), /ENOENT/);
  const made = await call(server, "POST", "/v1/stacks/alpha/clone", {
    headers: { ...cookie, "x-galley-csrf": csrf },
    body: { name: "alpha-copy" },
  });
  assert.equal(made.status, 201, made.text);
  // SSH instances are left out: the copy has none
  assert.deepEqual((made.json as { leftOut: string[] }).leftOut, ["alpha-s1 (127.0.0.1)"]);
  const [audited] = await store.listAudit({ stack: "alpha", outcome: "ok" });
  assert.deepEqual([audited?.action, audited?.actor], ["stack.clone", "user:alice"]);

  const up = await call(server, "POST", "/v1/stacks/alpha/up", {
    headers: { ...cookie, "x-galley-csrf": csrf },
    body: { wait: false },
  });
  assert.equal(up.status, 202, up.text);
  const { id } = up.json as { id: number };
  for (let i = 0; i < 200; i++) {
    const event = (await call(server, "GET", `/v1/events/${id}`, { headers: cookie })).json as {
      action?: { status: string };
    };
    if (event.action?.status === "done") break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.equal((await store.getInstance("alpha", "alpha-s1"))?.status, "online");
  const refused = await call(server, "POST", "/v1/stacks/beta/up", {
    headers: { ...cookie, "x-galley-csrf": csrf },
    body: { wait: false },
  });
  assert.deepEqual([refused.status, code(refused)], [403, "FORBIDDEN"]);
});
