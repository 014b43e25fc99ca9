import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Remote } from "../../cli/remote.ts";
import { GalleyError } from "../../core/errors.ts";
import { tempDir } from "../../resources/testing.ts";
import { mintToken } from "../auth.ts";
import { type RunningServer, startServer } from "../server.ts";
import * as deployments from "./deployments.ts";
import * as events from "./events.ts";
import * as instances from "./instances.ts";
import * as stacks from "./stacks.ts";

// The API of stacks, instances, events and deployments on a real server (HTTPS on 127.0.0.1, its
// own CA pinned by the client), on a kitchen whose layer has no recipes: events touch no host.

const galleyBin = fileURLToPath(new URL("../../../bin/galley.js", import.meta.url));

const stackText = (name: string, instances: string[]) =>
  `name: ${name}\ncookbooks: ../cookbooks\nlayers:\n  - name: app\ninstances:\n${instances
    .map((i) => `  - { name: ${i}, layers: [app] }`)
    .join("\n")}\n`;

async function refusal(work: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await work;
  } catch (error) {
    assert.ok(error instanceof GalleyError, String(error));
    return { code: error.code, message: error.message };
  }
  assert.fail("the request was not refused");
}

describe("the stacks, instances, events and deployments API", () => {
  let kitchen = "";
  let server: RunningServer;
  let admin: Remote;
  let viewer: Remote;
  let deployer: Remote;
  let other: Remote;
  const client = (token: string) =>
    new Remote({ server: server.url, caPem: server.caPem, caFingerprint: server.caFingerprint, token });

  before(async () => {
    kitchen = await tempDir("galley-api-");
    await fs.mkdir(path.join(kitchen, "cookbooks"));
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.writeFile(path.join(kitchen, "stacks", "alpha.yaml"), stackText("alpha", ["a1", "a2"]));
    await fs.writeFile(path.join(kitchen, "stacks", "beta.yaml"), stackText("beta", ["b1"]));
    server = await startServer({
      kitchen,
      routes: [stacks.register, instances.register, events.register, deployments.register],
      log: () => {},
    });
    admin = client((await fs.readFile(server.adminTokenFile, "utf8")).trim());
    const mint = async (name: string, stack: string, role: "viewer" | "deployer" | "admin") =>
      client((await mintToken(server.ctx.store, { name, grants: [{ stack, role }] })).secret);
    viewer = await mint("alpha-viewer", "alpha", "viewer");
    deployer = await mint("alpha-deployer", "alpha", "deployer");
    other = await mint("beta-admin", "beta", "admin");
  });
  after(async () => {
    await server?.close();
  });

  test("every route is in the OpenAPI document, with its role", async () => {
    const doc = await admin.request<{ paths: Record<string, Record<string, { "x-galley-role"?: string }>> }>(
      "GET",
      "/v1/openapi.json",
    );
    const roles = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).map(([method, op]) => `${method} ${p} ${op["x-galley-role"] ?? "-"}`),
    );
    for (const expected of [
      "get /v1/stacks/{stack} viewer",
      "put /v1/stacks/{stack} admin",
      "post /v1/stacks/{stack}/up admin",
      "post /v1/stacks/{stack}/instances/{name}/start admin",
      "post /v1/stacks/{stack}/events deployer",
      "get /v1/events/{id} viewer",
      "post /v1/stacks/{stack}/deployments deployer",
      "post /v1/stacks/{stack}/apps/{app}/rollback deployer",
      "post /v1/deployments/{id}/rollback deployer",
      "post /v1/deployments/{id}/resume deployer",
      "get /v1/deployments/{id} viewer",
    ])
      assert.ok(roles.includes(expected), `${expected} in ${roles.join("; ")}`);
  });

  test("GET /v1/stacks lists the stacks each token may see", async () => {
    assert.deepEqual(
      (await admin.request<{ stacks: { name: string }[] }>("GET", "/v1/stacks")).stacks.map((s) => s.name),
      ["alpha", "beta"],
    );
    assert.deepEqual(
      (await viewer.request<{ stacks: { name: string }[] }>("GET", "/v1/stacks")).stacks.map((s) => s.name),
      ["alpha"],
    );
    const stranger = client("galley_not-a-token");
    assert.equal((await refusal(stranger.request("GET", "/v1/stacks"))).code, "UNAUTHORIZED");
  });

  test("GET /v1/stacks/:stack: the file's text and the instances' status; other stacks and bad names refused", async () => {
    const alpha = await viewer.request<{ content: string; status: { stack: string; applied: boolean } }>(
      "GET",
      "/v1/stacks/alpha",
    );
    assert.equal(alpha.content, stackText("alpha", ["a1", "a2"]));
    assert.deepEqual([alpha.status.stack, alpha.status.applied], ["alpha", false]);
    assert.equal((await refusal(viewer.request("GET", "/v1/stacks/beta"))).code, "FORBIDDEN");
    assert.equal((await refusal(admin.request("GET", "/v1/stacks/gamma"))).code, "NOT_FOUND");
    // "/v1/stacks/.." is normalized to /v1/ by the URL before it is sent: no such route
    assert.equal((await refusal(admin.request("GET", "/v1/stacks/.."))).code, "NOT_FOUND");
    for (const bad of ["..%2f..%2fetc%2fpasswd", "Alpha", "a%00b", "a%2Fb"])
      assert.equal((await refusal(admin.request("GET", `/v1/stacks/${bad}`))).code, "REQUEST_INVALID", bad);
  });

  test("PUT /v1/stacks/:stack: an invalid file is refused with its line and field, and nothing changes", async () => {
    const file = path.join(kitchen, "stacks", "alpha.yaml");
    const before = await fs.readFile(file, "utf8");
    const broken = `${stackText("alpha", ["a1"])}  - { name: a2, layers: [nope] }\n`;
    const error = await refusal(admin.request("PUT", "/v1/stacks/alpha", { content: broken }));
    assert.equal(error.code, "STACK_INVALID");
    assert.match(error.message, /stacks\/alpha\.yaml:\d+/, "names the line");
    assert.match(error.message, /nope/, "names what is wrong");
    assert.doesNotMatch(error.message, new RegExp(kitchen), "no server path");
    const schema = await refusal(
      admin.request("PUT", "/v1/stacks/alpha", {
        content: "name: alpha\nlayers:\n  - name: app\n    bogus: 1\n",
      }),
    );
    assert.equal(schema.code, "STACK_INVALID");
    assert.match(schema.message, /alpha\.yaml:4/, schema.message);
    const renamed = await refusal(
      admin.request("PUT", "/v1/stacks/alpha", { content: stackText("zeta", ["z1"]) }),
    );
    assert.equal(renamed.code, "STACK_INVALID");
    assert.equal(await fs.readFile(file, "utf8"), before, "the file is unchanged");
    assert.deepEqual(
      (await fs.readdir(path.dirname(file))).sort(),
      ["alpha.yaml", "beta.yaml"],
      "no temporary file left",
    );
  });

  test("PUT /v1/stacks/:stack: admin only; a valid file is written and served", async () => {
    const content = stackText("gamma", ["g1", "g2", "g3"]);
    assert.equal((await refusal(deployer.request("PUT", "/v1/stacks/alpha", { content }))).code, "FORBIDDEN");
    assert.equal((await refusal(other.request("PUT", "/v1/stacks/gamma", { content }))).code, "FORBIDDEN");
    assert.equal(
      (await refusal(admin.request("PUT", "/v1/stacks/gamma", { text: content }))).code,
      "REQUEST_INVALID",
    );
    const written = await admin.request<{ created: boolean }>("PUT", "/v1/stacks/gamma", { content });
    assert.equal(written.created, true);
    assert.equal(await fs.readFile(path.join(kitchen, "stacks", "gamma.yaml"), "utf8"), content);
    const { instances: list } = await admin.request<{ instances: { name: string; status: string }[] }>(
      "GET",
      "/v1/stacks/gamma/instances",
    );
    assert.deepEqual(
      list.map((i) => `${i.name}:${i.status}`),
      ["g1:stopped", "g2:stopped", "g3:stopped"],
    );
    const audit = await server.ctx.store.listAudit({ stack: "gamma" });
    assert.ok(
      audit.some((a) => a.outcome === "ok" && a.actor === "token:admin"),
      "the write is audited",
    );
    assert.ok(
      audit.some((a) => a.outcome === "refused" && a.actor === "token:beta-admin"),
      "the refusal too",
    );
  });

  test("instances: the list, one with its history; start/stop are admin's", async () => {
    await server.ctx.store.saveStack("alpha", {});
    await server.ctx.store.upsertInstance({
      stack: "alpha",
      name: "a1",
      layers: ["app"],
      provider: "container",
    } as never);
    await server.ctx.store.setInstanceStatus("alpha", "a1", "online", "test: online");
    const one = await viewer.request<{
      instance: { status: string };
      history: { to: string; reason: string }[];
    }>("GET", "/v1/stacks/alpha/instances/a1");
    assert.equal(one.instance.status, "online");
    assert.ok(one.history.some((h) => h.to === "online" && h.reason === "test: online"));
    assert.equal((await refusal(viewer.request("GET", "/v1/stacks/alpha/instances/zz"))).code, "NOT_FOUND");
    assert.equal(
      (await refusal(deployer.request("POST", "/v1/stacks/alpha/instances/a2/start"))).code,
      "FORBIDDEN",
    );
    // a2 is stopped: stopping it does nothing, and says so as `galley instance stop --json` would
    const stopped = await admin.request<{
      outcome: { stack: string; instances: { name: string }[] };
      exitCode: number;
    }>("POST", "/v1/stacks/alpha/instances/a2/stop");
    assert.equal(stopped.exitCode, 0);
    assert.equal(stopped.outcome.stack, "alpha");
  });

  test("events: 202 with the id, then the event and its outcome; roles, bodies and other stacks refused", async () => {
    const answer = await deployer.send<{ id: number }>("POST", "/v1/stacks/alpha/events", {
      kind: "configure",
    });
    assert.equal(answer.status, 202);
    const { id } = answer.body;
    const done = await waitFor(async () => {
      const got = await viewer.request<{
        event: { status: string; outcomes: { instance: string }[] };
        action?: { status: string; exitCode?: number };
      }>("GET", `/v1/events/${id}`);
      return got.action?.status === "running" ? undefined : got;
    });
    assert.equal(done.event.status, "succeeded");
    assert.deepEqual(done.action?.exitCode, 0);
    assert.deepEqual(
      done.event.outcomes.map((o) => o.instance),
      ["a1"],
      "the online instance only",
    );
    const list = await viewer.request<{ events: { id: number }[] }>("GET", "/v1/stacks/alpha/events");
    assert.ok(list.events.some((e) => e.id === id));
    assert.equal(
      (await refusal(viewer.request("POST", "/v1/stacks/alpha/events", { kind: "configure" }))).code,
      "FORBIDDEN",
    );
    assert.equal((await refusal(other.request("GET", `/v1/events/${id}`))).code, "FORBIDDEN");
    assert.equal(
      (await refusal(deployer.request("POST", "/v1/stacks/alpha/events", { kind: "reboot" }))).code,
      "REQUEST_INVALID",
    );
    assert.equal(
      (
        await refusal(
          deployer.request("POST", "/v1/stacks/alpha/events", {
            kind: "configure",
            layer: "app",
            instance: "a1",
          }),
        )
      ).code,
      "USAGE",
    );
    assert.equal(
      (await refusal(deployer.request("POST", "/v1/stacks/alpha/events", { kind: "setup", instance: "a2" })))
        .code,
      "STACK_INVALID",
      "an instance that is not online is refused before anything runs",
    );
    assert.equal((await refusal(admin.request("GET", "/v1/events/99999"))).code, "NOT_FOUND");
    assert.equal(
      (await refusal(viewer.request("GET", "/v1/events/99999"))).code,
      "FORBIDDEN",
      "nothing said of others' ids",
    );
  });

  test("deployments: lists, and refusals before anything starts", async () => {
    const list = await viewer.request<{ deployments: unknown[] }>(
      "GET",
      "/v1/stacks/alpha/deployments?app=hello",
    );
    assert.deepEqual(list.deployments, []);
    assert.equal(
      (await refusal(viewer.request("POST", "/v1/stacks/alpha/deployments", { app: "hello" }))).code,
      "FORBIDDEN",
    );
    assert.equal(
      (
        await refusal(
          deployer.request("POST", "/v1/stacks/alpha/deployments", { app: "hello", strategy: "yolo" }),
        )
      ).code,
      "REQUEST_INVALID",
    );
    assert.equal(
      (await refusal(deployer.request("POST", "/v1/stacks/alpha/deployments", { app: "hello", batch: "0" })))
        .code,
      "USAGE",
    );
    assert.equal(
      (await refusal(deployer.request("POST", "/v1/stacks/alpha/deployments", { app: "hello" }))).code,
      "STACK_INVALID",
      "an app the stack does not have",
    );
    assert.equal(
      (await refusal(deployer.request("POST", "/v1/stacks/alpha/apps/hello/rollback", {}))).code,
      "ARGS_INVALID",
    );
    assert.equal((await refusal(admin.request("GET", "/v1/deployments/4242"))).code, "NOT_FOUND");
    assert.equal((await refusal(deployer.request("POST", "/v1/deployments/4242/resume"))).code, "FORBIDDEN");
  });

  test("the CLI with --server prints the same --json as in the kitchen (stack status, deployments)", async () => {
    const contextFile = path.join(kitchen, "context.json");
    const env = { ...process.env, NO_COLOR: "1", GALLEY_CONTEXT: contextFile };
    // not spawnSync: the server answering the CLI runs in this process
    const run = (args: string[], more: Record<string, string> = {}) =>
      new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          process.execPath,
          [galleyBin, ...args],
          { cwd: kitchen, env: { ...env, ...more }, encoding: "utf8" },
          (error, stdout, stderr) => resolve({ status: error ? Number(error.code) : 0, stdout, stderr }),
        );
      });
    const login = await run([
      "login",
      "--server",
      server.url,
      "--token-file",
      server.adminTokenFile,
      "--ca-fingerprint",
      server.caFingerprint,
      "--json",
    ]);
    assert.equal(login.status, 0, login.stderr);
    assert.equal(JSON.parse(login.stdout).caFingerprint, server.caFingerprint);
    assert.equal((await fs.stat(contextFile)).mode & 0o777, 0o600);
    const wrong = await run([
      "login",
      "--server",
      server.url,
      "--token-file",
      server.adminTokenFile,
      "--ca-fingerprint",
      "00".repeat(32),
    ]);
    assert.equal(wrong.status, 4, wrong.stderr);
    assert.match(wrong.stderr, /SERVER_UNTRUSTED/);
    // without --ca-fingerprint: pinned on first use, printed; a CA that changed since is refused
    const firstUse = path.join(kitchen, "first-use.json");
    const first = await run(
      ["login", "--server", server.url, "--token-file", server.adminTokenFile, "--json"],
      {
        GALLEY_CONTEXT: firstUse,
      },
    );
    assert.equal(first.status, 0, first.stderr);
    assert.equal(JSON.parse(first.stdout).pinned, "first use");
    const saved = JSON.parse(await fs.readFile(firstUse, "utf8"));
    await fs.writeFile(firstUse, JSON.stringify({ ...saved, caFingerprint: "ab".repeat(32) }));
    const changed = await run(["login", "--server", server.url, "--token-file", server.adminTokenFile], {
      GALLEY_CONTEXT: firstUse,
    });
    assert.equal(changed.status, 4, changed.stderr);
    assert.match(changed.stderr, /error\[SERVER_UNTRUSTED\]: .*CA changed/);
    // a client pinning another CA does not talk to this server
    const { caPem: otherCa } = await startServer({
      kitchen: await tempDir("galley-api-other-"),
      log: () => {},
    }).then(async (s) => {
      await s.close();
      return s;
    });
    const pinnedElsewhere = new Remote({ ...admin.context, caPem: otherCa });
    assert.equal((await refusal(pinnedElsewhere.request("GET", "/v1/stacks"))).code, "SERVER_UNTRUSTED");
    for (const args of [
      ["stack", "status", "alpha"],
      ["deployments", "--stack", "alpha"],
    ]) {
      const local = await run([...args, "--json", "--server", "local"]);
      const remote = await run([...args, "--json", "--server", server.url]);
      assert.equal(local.status, 0, local.stderr);
      assert.equal(remote.status, 0, remote.stderr);
      assert.deepEqual(JSON.parse(remote.stdout), JSON.parse(local.stdout), args.join(" "));
    }
    // events run in the server; the CLI follows them and prints what `galley run --json` prints
    const ran = await run(["run", "configure", "--stack", "alpha", "--json"]);
    assert.equal(ran.status, 0, ran.stderr);
    const outcome = JSON.parse(ran.stdout);
    assert.deepEqual(Object.keys(outcome).sort(), ["events", "instances", "stack", "stateVersion"]);
    assert.deepEqual(
      outcome.events.map((e: { kind: string; status: string; outcomes: object }) => [
        e.kind,
        e.status,
        Object.keys(e.outcomes),
      ]),
      [["configure", "succeeded", ["a1"]]],
    );
    const local = await run(["run", "configure", "--stack", "alpha", "--json", "--server", "local"]);
    assert.deepEqual(
      Object.keys(JSON.parse(local.stdout).events[0]).sort(),
      Object.keys(outcome.events[0]).sort(),
      "the same fields as the kitchen's",
    );
    const stop = await run(["instance", "stop", "a2", "--stack", "alpha", "--json"]);
    assert.equal(stop.status, 0, stop.stderr);
    assert.equal(JSON.parse(stop.stdout).stack, "alpha");
    const token = await mintToken(server.ctx.store, {
      name: "cli-alpha",
      grants: [{ stack: "alpha", role: "viewer" }],
    });
    const forbidden = await run(["stack", "status", "beta", "--json"], {
      GALLEY_TOKEN: token.secret,
      GALLEY_SERVER: server.url,
    });
    assert.equal(JSON.parse(forbidden.stdout).error.code, "FORBIDDEN");
    assert.equal(forbidden.status, 4);
  });

  // last: the server stops taking background work
  test("a stopping server waits for its events and deployments, and starts none after", async () => {
    const { id } = await deployer.request<{ id: number }>("POST", "/v1/stacks/alpha/events", {
      kind: "configure",
      forks: 1,
      wait: "0",
    });
    await stacks.stopBackground(server.ctx);
    const { event } = await viewer.request<{ event: { status: string } }>("GET", `/v1/events/${id}`);
    assert.ok(!["queued", "running"].includes(event.status), `event #${id} ended: ${event.status}`);
    const late = await refusal(deployer.request("POST", "/v1/stacks/alpha/events", { kind: "configure" }));
    assert.equal(late.code, "INTERRUPTED");
  });
});

async function waitFor<T>(probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail("gave up waiting");
    await new Promise((r) => setTimeout(r, 100));
  }
}
