import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { loadStack } from "../../stacks/stack.ts";
import type { Store } from "../../store/store.ts";
import { mintToken } from "../auth.ts";
import { call, testServer } from "../test-support.ts";
import { publicUrl } from "./summary.ts";

// GET /v1/overview and GET /v1/stacks/:stack/summary on the whole server, with the store filled
// directly (instances, an agent and its run, events, deployments and an A/B under way): what the
// panel's stack pages read. No host is started.

const credential = "pw-in-url-7f3a9c";
const queryToken = "tk-in-query-5d21e8";

const alpha = `name: alpha
cookbooks: ../cookbooks
layers:
  - name: app
    short_name: ap
    auto_healing: true
  - name: lb
    transport: agent
    load_based: { up: { cpu: 80 }, down: { cpu: 20 } }
apps:
  - name: hello
    layers: [app]
    source: { type: git, url: "https://deploy:${credential}@example.com/hello.git?token=${queryToken}", revision: main }
    environment: { DB_URL: "postgres://app:${credential}@db/app" }
    release: {}
instances:
  - { name: a1, layers: [app] }
  - { name: a2, layers: [app], scaling: { type: time, schedule: { monday: [9, 10] } } }
  - { name: a3, layers: [lb], scaling: { type: load } }
`;

const small = (name: string, instances: string[]) =>
  `name: ${name}\ncookbooks: ../cookbooks\nlayers:\n  - name: app\ninstances:\n${instances
    .map((i) => `  - { name: ${i}, layers: [app] }`)
    .join("\n")}\n`;

async function deployment(
  store: Store,
  input: {
    stack: string;
    app: string;
    revision: string;
    strategy?: string;
    params?: Record<string, unknown>;
  },
  status: "succeeded" | "failed",
) {
  const created = await store.createDeployment({
    requested: "main",
    attributes: {},
    strategy: "rolling",
    params: {},
    user: "token:test",
    migration: "none",
    ...input,
  });
  await store.startDeployment(created.id);
  return store.finishDeployment(created.id, status);
}

async function event(
  store: Store,
  stack: string,
  kind: "configure" | "setup",
  status: "succeeded" | "failed",
) {
  const created = await store.createEvent({ stack, kind });
  await store.startEvent(created.id);
  return store.finishEvent(created.id, status);
}

test("overview and stack summary: what the store knows, by grant; a stack file that does not load is still shown", async (t) => {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  const store = server.ctx.store;
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  await fs.writeFile(path.join(kitchen, "stacks", "alpha.yaml"), alpha);
  await fs.writeFile(
    path.join(kitchen, "stacks", "beta.yaml"),
    small("beta", ["b1"]).replace("layers:", "secrets: [beta-secrets.yaml]\nlayers:"),
  );
  // gamma was applied once, then its file broke: the store's copy and records are what is known
  const gammaFile = path.join(kitchen, "stacks", "gamma.yaml");
  await fs.writeFile(gammaFile, small("gamma", ["g1", "g2"]));
  await store.saveStack("gamma", await loadStack(gammaFile, { decrypt: false }));
  await store.upsertInstance({ stack: "gamma", name: "g1", layers: ["app"], provider: "container" });
  await store.setInstanceStatus("gamma", "g1", "online", "test");
  await store.upsertInstance({ stack: "gamma", name: "g9", layers: ["old"], provider: "container" });
  await fs.writeFile(gammaFile, "name: gamma\nlayers: []\n");
  // a file that is not a stack name is not served
  await fs.writeFile(path.join(kitchen, "stacks", "Not-A-Stack.yaml"), small("x", []));
  // nor are the stacks' attribute files beside them: an encrypted one, and one a stack names in secrets:
  const ciphertext = `$GALLEY_VAULT;1;AES256-GCM;k1\n${"QUJD".repeat(400)}\n`;
  await fs.writeFile(path.join(kitchen, "stacks", "secrets.yaml"), ciphertext);
  await fs.writeFile(
    path.join(kitchen, "stacks", "beta-secrets.yaml"),
    "db: { password: not-yet-encrypted }\n",
  );

  // alpha: a1 online with an address, out of service, weight 10 (B of an A/B); a3 an agent
  await store.upsertInstance({
    stack: "alpha",
    name: "a1",
    layers: ["app"],
    provider: "container",
    address: "10.0.0.11",
  });
  await store.setInstanceStatus("alpha", "a1", "online", "test");
  await store.setInstanceService("alpha", "a1", false);
  await store.setInstanceWeight("alpha", "a1", 10);
  // an instance the file no longer names
  await store.upsertInstance({ stack: "alpha", name: "old1", layers: ["app"], provider: "container" });
  await store.setInstanceStatus("alpha", "old1", "setup_failed", "test");
  const { publicKey } = generateKeyPairSync("ed25519");
  await store.registerAgent({
    stack: "alpha",
    instance: "a3",
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
  });
  await store.recordAgentRun({
    stack: "alpha",
    instance: "a3",
    generation: 1,
    seq: 4,
    kind: "drift",
    mode: "report",
    status: "drift",
    changed: 2,
    failed: 0,
    startedAt: "2026-12-04T01:00:00.000Z",
    finishedAt: "2026-12-04T01:00:30.000Z",
  });
  await store.nextStateVersion("alpha", {});
  await store.nextStateVersion("alpha", {});
  const events = [];
  for (let i = 0; i < 12; i++)
    events.push(await event(store, "alpha", "configure", i === 11 ? "failed" : "succeeded"));
  await event(store, "beta", "setup", "succeeded");
  const a = await deployment(store, { stack: "alpha", app: "hello", revision: "a".repeat(40) }, "succeeded");
  await deployment(store, { stack: "alpha", app: "hello", revision: "c".repeat(40) }, "failed");
  const b = await deployment(
    store,
    {
      stack: "alpha",
      app: "hello",
      revision: "b".repeat(40),
      strategy: "ab",
      params: { instances: ["a1"], base: String(a.id), share: "10%", expected: "9.09%" },
    },
    "succeeded",
  );
  // an app gamma's copy does not name: known from its deployments
  await deployment(store, { stack: "gamma", app: "legacy", revision: "d".repeat(40) }, "succeeded");

  const mint = async (name: string, stack: string, role: "viewer" | "deployer" | "admin") =>
    (await mintToken(store, { name, grants: [{ stack, role }] })).secret;
  const admin = server.adminToken;
  const viewer = await mint("alpha-viewer", "alpha", "viewer");
  const deployer = await mint("alpha-deployer", "alpha", "deployer");
  const betaAdmin = await mint("beta-admin", "beta", "admin");
  const code = (reply: { json: unknown }) => (reply.json as { error?: { code: string } }).error?.code;

  // both routes in the OpenAPI document with their roles
  const doc = (await call(server, "GET", "/v1/openapi.json")).json as {
    paths: Record<string, Record<string, { "x-galley-role"?: string }>>;
  };
  assert.equal(doc.paths["/v1/overview"]?.get?.["x-galley-role"], "viewer");
  assert.equal(doc.paths["/v1/stacks/{stack}/summary"]?.get?.["x-galley-role"], "viewer");

  // the overview: every stack the caller may view, each at a glance
  type Overview = {
    stacks: {
      name: string;
      file: string;
      invalid?: { code: string; message: string };
      stateVersion: number | null;
      layers: { name: string; instances: string[] }[];
      counts: Record<string, number>;
      apps: { name: string; deployed: { id: number; revision: string; status: string } | null }[];
      events: { id: number; status: string }[];
    }[];
  };
  const all = await call(server, "GET", "/v1/overview", { token: admin });
  assert.equal(all.status, 200, all.text);
  const overview = all.json as Overview;
  assert.deepEqual(
    overview.stacks.map((s) => s.name),
    ["alpha", "beta", "gamma"],
  );
  assert.doesNotMatch(all.text, /GALLEY_VAULT|QUJD|not-yet-encrypted/);
  const listed = await call(server, "GET", "/v1/stacks", { token: admin });
  assert.deepEqual(
    (listed.json as { stacks: { name: string }[] }).stacks.map((s) => s.name),
    ["alpha", "beta", "gamma"],
    "GET /v1/stacks leaves them out too",
  );
  const [oa, ob, og] = overview.stacks;
  assert.deepEqual(oa!.layers, [
    { name: "app", instances: ["a1", "a2", "old1"] },
    { name: "lb", instances: ["a3"] },
  ]);
  assert.deepEqual(oa!.counts, { online: 1, stopped: 2, setup_failed: 1 });
  assert.equal(oa!.stateVersion, 2);
  assert.deepEqual(oa!.apps, [
    {
      name: "hello",
      deployed: {
        id: a.id,
        revision: "a".repeat(40),
        requested: "main",
        status: "succeeded",
        finishedAt: a.finishedAt,
      },
    },
  ]);
  assert.deepEqual(
    oa!.events.map((e) => e.id),
    events
      .slice(-5)
      .reverse()
      .map((e) => e.id),
  );
  assert.equal(oa!.invalid, undefined);
  assert.deepEqual([ob!.counts, ob!.events.length, ob!.stateVersion], [{ stopped: 1 }, 1, null]);
  assert.equal(og!.invalid?.code, "STACK_INVALID");
  assert.match(og!.invalid!.message, /stacks\/gamma\.yaml/);
  assert.doesNotMatch(og!.invalid!.message, new RegExp(kitchen), "no server path");
  assert.deepEqual(og!.layers, [
    { name: "app", instances: ["g1", "g2"] },
    { name: "old", instances: ["g9"] },
  ]);
  assert.deepEqual(og!.counts, { online: 1, stopped: 2 });
  assert.deepEqual(
    og!.apps.map((x) => [x.name, x.deployed?.revision]),
    [],
    "gamma's copy names no app: its deployments' apps are not guessed when a copy is known",
  );

  // by grant: a viewer of alpha sees alpha only; beta's admin beta only; no token: 401
  const seen = async (token: string) =>
    ((await call(server, "GET", "/v1/overview", { token })).json as Overview).stacks.map((s) => s.name);
  assert.deepEqual(await seen(viewer), ["alpha"]);
  assert.deepEqual(await seen(betaAdmin), ["beta"]);
  const anonymous = await call(server, "GET", "/v1/overview");
  assert.deepEqual([anonymous.status, code(anonymous)], [401, "UNAUTHORIZED"]);
  assert.deepEqual([(await call(server, "GET", "/v1/overview", { token: "galley_nope" })).status], [401]);

  // the summary: layers, instances with their status, transport, scaling and agent
  const connected = "2026-12-04T02:00:00.000Z";
  const hub = server.ctx.agents;
  const connections = hub.connections.bind(hub);
  // a3's agent is connected (the hub's view; no real agent here)
  hub.connections = () => [
    ...connections(),
    {
      stack: "alpha",
      instance: "a3",
      generation: 1,
      connectedAt: connected,
      lastSeenAt: connected,
      remote: "10.0.0.13:40000",
    },
  ];
  t.after(() => {
    hub.connections = connections;
  });
  const reply = await call(server, "GET", "/v1/stacks/alpha/summary", { token: viewer });
  assert.equal(reply.status, 200, reply.text);
  const summary = reply.json as {
    name: string;
    file: string;
    invalid?: unknown;
    stateVersion: number;
    layers: unknown[];
    instances: Record<string, unknown>[];
    apps: {
      name: string;
      layers: string[];
      source: Record<string, unknown>;
      deployed: { id: number } | null;
      ab: Record<string, unknown> | null;
    }[];
    events: { id: number }[];
    deployments: { id: number; strategy: string }[];
  };
  assert.deepEqual(
    [summary.name, summary.file, summary.stateVersion, summary.invalid],
    ["alpha", "stacks/alpha.yaml", 2, undefined],
  );
  assert.deepEqual(summary.layers, [
    { name: "app", shortName: "ap", autoHealing: true, instances: ["a1", "a2", "old1"] },
    {
      name: "lb",
      autoHealing: false,
      loadBased: {
        up: { cpu: 80, instances: 1, wait_minutes: 5, ignore_minutes: 10 },
        down: { cpu: 20, instances: 1, wait_minutes: 5, ignore_minutes: 10 },
      },
      instances: ["a3"],
    },
  ]);
  const row = (name: string) => summary.instances.find((i) => i.name === name)!;
  assert.deepEqual(
    summary.instances.map((i) => [i.name, i.status, i.transport, i.scaling, i.provider, i.declared]),
    [
      ["a1", "online", "ssh", "always", "container", true],
      ["a2", "stopped", "ssh", "time", "container", true],
      ["a3", "stopped", "agent", "load", "container", true],
      ["old1", "setup_failed", "ssh", "always", "container", false],
    ],
  );
  assert.deepEqual(
    [row("a1").address, row("a1").inService, row("a1").weight, row("a1").agent],
    ["10.0.0.11", false, 10, null],
  );
  assert.deepEqual([row("a2").address, row("a2").inService, row("a2").weight], [null, true, 100]);
  assert.deepEqual(row("a3").agent, {
    generation: 1,
    connected: true,
    lastSeenAt: connected,
    lastRun: {
      seq: 4,
      kind: "drift",
      mode: "report",
      status: "drift",
      changed: 2,
      failed: 0,
      finishedAt: "2026-12-04T01:00:30.000Z",
    },
  });
  // apps: the deployed revision (not the A/B's), the A/B under way, the source without credentials
  const [hello] = summary.apps;
  assert.deepEqual([hello!.name, hello!.layers, hello!.deployed?.id], ["hello", ["app"], a.id]);
  assert.deepEqual(hello!.source, {
    type: "git",
    url: "https://example.com/hello.git",
    revision: "main",
  });
  assert.deepEqual(hello!.ab, {
    deployment: b.id,
    revision: "b".repeat(40),
    requested: "main",
    base: a.id,
    instances: ["a1"],
    share: "10%",
    expected: "9.09%",
    weights: { a1: 10 },
  });
  assert.doesNotMatch(reply.text, new RegExp(`${credential}|${queryToken}`), "no credential of a URL");
  assert.doesNotMatch(reply.text, /DB_URL|postgres/, "no environment");
  // the last 10 events and deployments, newest first
  assert.deepEqual(
    summary.events.map((e) => e.id),
    events
      .slice(-10)
      .reverse()
      .map((e) => e.id),
  );
  assert.deepEqual(
    summary.deployments.map((d) => [d.id, d.strategy]),
    [
      [b.id, "ab"],
      [b.id - 1, "rolling"],
      [a.id, "rolling"],
    ],
  );

  // a file that does not load: invalid, and the layers and instances of the store's copy and records
  const broken = await call(server, "GET", "/v1/stacks/gamma/summary", { token: admin });
  assert.equal(broken.status, 200, broken.text);
  const gamma = broken.json as typeof summary & { invalid: { code: string; message: string } };
  assert.equal(gamma.invalid.code, "STACK_INVALID");
  assert.deepEqual(
    gamma.instances.map((i) => [i.name, i.status, i.declared]),
    [
      ["g1", "online", true],
      ["g2", "stopped", true],
      ["g9", "stopped", false],
    ],
  );
  assert.deepEqual(gamma.apps, []);
  // nothing known but the records: the apps of its deployments
  await fs.writeFile(path.join(kitchen, "stacks", "delta.yaml"), "name: delta\nlayers: [\n");
  await store.upsertInstance({ stack: "delta", name: "d1", layers: ["web"], provider: "ssh" });
  await deployment(store, { stack: "delta", app: "legacy", revision: "e".repeat(40) }, "succeeded");
  const delta = (await call(server, "GET", "/v1/stacks/delta/summary", { token: admin }))
    .json as typeof summary & {
    invalid: { code: string };
  };
  assert.equal(delta.invalid.code, "STACK_INVALID");
  assert.deepEqual(delta.layers, [{ name: "web", autoHealing: false, instances: ["d1"] }]);
  assert.deepEqual(
    delta.apps.map((x) => [x.name, x.source, (x.deployed as unknown as { revision: string }).revision]),
    [["legacy", null, "e".repeat(40)]],
  );

  // the overview reads files without opening each stack: it finds them invalid as the summary does
  await fs.writeFile(path.join(kitchen, "stacks", "epsilon.yaml"), small("epsilon", ["e1", "g1"]));
  await fs.writeFile(path.join(kitchen, "stacks", "zed.yaml"), small("other", ["z1"]));
  await fs.writeFile(
    path.join(kitchen, "stacks", "long.yaml"),
    `name: long\nlayers: "${"x".repeat(2000)}"\n`,
  );
  await fs.writeFile(
    path.join(kitchen, "stacks", "eta.yaml"),
    small("eta", ["h1"]).replace("../cookbooks", "../nowhere"),
  );
  const later = (await call(server, "GET", "/v1/overview", { token: admin })).json as Overview;
  for (const [name, pattern] of [
    ["epsilon", /^stacks\/epsilon\.yaml: instance g1 is also an instance of stack gamma in this kitchen$/],
    ["zed", /^stacks\/zed\.yaml names its stack other$/],
    ["eta", /^stacks\/eta\.yaml: cookbooks: no folder nowhere$/],
  ] as const) {
    const listed = later.stacks.find((x) => x.name === name);
    const one = (await call(server, "GET", `/v1/stacks/${name}/summary`, { token: admin })).json as {
      invalid: unknown;
    };
    assert.deepEqual(listed?.invalid, one.invalid, name);
    assert.equal(listed?.invalid?.code, "STACK_INVALID", name);
    assert.match(listed!.invalid!.message, pattern);
  }
  const long = later.stacks.find((x) => x.name === "long")?.invalid;
  assert.equal(long?.code, "STACK_INVALID");
  assert.ok(long!.message.length <= 301, `a long message is cut: ${long!.message.length}`);
  assert.ok(
    later.stacks.find((x) => x.name === "alpha")?.invalid === undefined,
    "alpha's instances are its own",
  );

  // authorization and bad input
  assert.equal((await call(server, "GET", "/v1/stacks/alpha/summary", { token: deployer })).status, 200);
  for (const [urlPath, token, status, errorCode] of [
    ["/v1/stacks/beta/summary", viewer, 403, "FORBIDDEN"],
    ["/v1/stacks/alpha/summary", betaAdmin, 403, "FORBIDDEN"],
    ["/v1/stacks/zeta/summary", admin, 404, "NOT_FOUND"],
    ["/v1/stacks/zeta/summary", viewer, 403, "FORBIDDEN"],
    ["/v1/stacks/Alpha/summary", admin, 400, "REQUEST_INVALID"],
    ["/v1/stacks/alpha/summary", undefined, 401, "UNAUTHORIZED"],
  ] as const) {
    const refused = await call(server, "GET", urlPath, token === undefined ? {} : { token });
    assert.deepEqual([refused.status, code(refused)], [status, errorCode], `${urlPath}: ${refused.text}`);
  }
  const bad = await call(server, "GET", "/v1/stacks/a%2Fb/summary", { token: admin });
  assert.equal(bad.status, 400);
  assert.match((bad.json as { error: { message: string } }).error.message, /^path\.stack: /);
});

test("publicUrl: no user, password, query or fragment; what it cannot read is hidden", () => {
  assert.equal(
    publicUrl("https://u:p@example.com/x.tar.gz?X-Amz-Signature=abc#f"),
    "https://example.com/x.tar.gz",
  );
  assert.equal(publicUrl("git@github.com:acme/app.git"), "git@github.com:acme/app.git");
  assert.equal(publicUrl("ssh://git:pw@host/repo.git"), "ssh://host/repo.git");
  assert.equal(publicUrl("not a url with secret"), "(hidden)");
  assert.equal(publicUrl("javascript:alert(1)"), "(hidden)");
});
