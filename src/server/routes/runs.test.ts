import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { mintToken } from "../auth.ts";
import { call, testServer } from "../test-support.ts";
import { cliAsync, loginTo } from "../../../test/support/cli.ts";

// The API added for agents' runs, A/B ends, run-recipes and enrollment of never-started instances,
// on the whole server (HTTPS, its own CA pinned), and the CLI with --server printing what it
// prints in the kitchen. The stack's layer has no recipes and no instance is started: no host.

const stackText = (name: string, instances: string[]) =>
  `name: ${name}\ncookbooks: ../cookbooks\nlayers:\n  - name: app\napps:\n  - name: hello\n    layers: [app]\n    source: { type: archive, url: "https://example.com/hello.tar.gz" }\n    release: {}\ninstances:\n${instances
    .map((i) => `  - { name: ${i}, layers: [app] }`)
    .join("\n")}\n`;

const run = (seq: number, status: "ok" | "drift" | "failed") => ({
  stack: "alpha",
  instance: "a1",
  generation: 1,
  seq,
  kind: "drift" as const,
  mode: "report" as const,
  bundle: "a".repeat(64),
  status,
  changed: status === "drift" ? 2 : 0,
  failed: status === "failed" ? 1 : 0,
  report: { resources: [{ id: `file[/etc/motd]`, status: status === "drift" ? "changed" : "ok" }] },
  startedAt: `2026-12-04T01:0${seq}:00.000Z`,
  finishedAt: `2026-12-04T01:0${seq}:30.000Z`,
});

test("agent runs, A/B ends, run-recipes and enrollment over the API; the CLI through the server prints what it prints locally", async (t) => {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  await fs.writeFile(path.join(kitchen, "stacks", "alpha.yaml"), stackText("alpha", ["a1", "a2"]));
  await fs.writeFile(path.join(kitchen, "stacks", "beta.yaml"), stackText("beta", ["b1"]));
  const store = server.ctx.store;
  const { publicKey } = generateKeyPairSync("ed25519");
  await store.registerAgent({
    stack: "alpha",
    instance: "a1",
    publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
  });
  for (const [seq, status] of [
    [1, "ok"],
    [2, "drift"],
    [3, "failed"],
  ] as const)
    assert.equal(await store.recordAgentRun(run(seq, status)), "recorded");
  const mint = async (name: string, stack: string, role: "viewer" | "deployer" | "admin") =>
    (await mintToken(store, { name, grants: [{ stack, role }] })).secret;
  const admin = server.adminToken;
  const viewer = await mint("alpha-viewer", "alpha", "viewer");
  const deployer = await mint("alpha-deployer", "alpha", "deployer");
  const betaAdmin = await mint("beta-admin", "beta", "admin");
  const code = (reply: { json: unknown }) => (reply.json as { error?: { code: string } }).error?.code;

  // every new route is in the OpenAPI document with its role
  const doc = (await call(server, "GET", "/v1/openapi.json")).json as {
    paths: Record<string, Record<string, { "x-galley-role"?: string }>>;
  };
  const roles = Object.entries(doc.paths).flatMap(([p, ops]) =>
    Object.entries(ops).map(([method, op]) => `${method} ${p} ${op["x-galley-role"] ?? "-"}`),
  );
  for (const expected of [
    "get /v1/stacks/{stack}/instances/{name}/runs viewer",
    "get /v1/stacks/{stack}/apps/{app}/ab viewer",
    "post /v1/stacks/{stack}/apps/{app}/ab/promote deployer",
    "post /v1/stacks/{stack}/apps/{app}/ab/abort deployer",
  ])
    assert.ok(roles.includes(expected), `${expected} in ${roles.join("; ")}`);

  // the agent's runs: newest first, reports only when asked, limited
  const runs = await call(server, "GET", "/v1/stacks/alpha/instances/a1/runs", { token: viewer });
  assert.equal(runs.status, 200, runs.text);
  const body = runs.json as {
    agent: { generation: number; connected: boolean; lastRun: { seq: number; status: string } };
    runs: Record<string, unknown>[];
  };
  assert.deepEqual(
    body.runs.map((r) => [r.seq, r.status, r.changed, r.failed, "report" in r]),
    [
      [3, "failed", 0, 1, false],
      [2, "drift", 2, 0, false],
      [1, "ok", 0, 0, false],
    ],
  );
  assert.deepEqual(
    [body.agent.generation, body.agent.connected, body.agent.lastRun.seq, body.agent.lastRun.status],
    [1, false, 3, "failed"],
  );
  const withReport = await call(server, "GET", "/v1/stacks/alpha/instances/a1/runs?report=1&limit=1", {
    token: viewer,
  });
  const reported = (withReport.json as { runs: { seq: number; report: unknown }[] }).runs;
  assert.deepEqual(
    reported.map((r) => [r.seq, r.report]),
    [[3, run(3, "failed").report]],
  );
  // an instance of the file without an agent: no runs; one of no file: 404; bad query: 400
  const none = await call(server, "GET", "/v1/stacks/alpha/instances/a2/runs", { token: viewer });
  assert.deepEqual(
    [
      none.status,
      (none.json as { agent: unknown; runs: unknown[] }).runs,
      (none.json as { agent: unknown }).agent,
    ],
    [200, [], null],
  );
  assert.equal(
    code(await call(server, "GET", "/v1/stacks/alpha/instances/a9/runs", { token: viewer })),
    "NOT_FOUND",
  );
  assert.equal(
    code(await call(server, "GET", "/v1/stacks/alpha/instances/a1/runs?limit=0", { token: viewer })),
    "REQUEST_INVALID",
  );
  // the instance shows its agent
  const one = await call(server, "GET", "/v1/stacks/alpha/instances/a1", { token: viewer });
  assert.equal(one.status, 200, one.text);
  assert.deepEqual((one.json as { agent: { lastRun: { seq: number } } }).agent.lastRun.seq, 3);
  const plain = await call(server, "GET", "/v1/stacks/alpha/instances/a2", { token: viewer });
  assert.equal(plain.status, 200, plain.text);
  assert.ok(!("agent" in (plain.json as object)), "no agent enrolled: no agent field");

  // refusals: no token 401, another stack's token 403, and viewers may not run or end things
  assert.equal((await call(server, "GET", "/v1/stacks/alpha/instances/a1/runs")).status, 401);
  const refusals: [string, string, string, unknown?][] = [
    ["GET", "/v1/stacks/alpha/instances/a1/runs", betaAdmin],
    ["GET", "/v1/stacks/alpha/apps/hello/ab", betaAdmin],
    ["POST", "/v1/stacks/alpha/apps/hello/ab/promote", viewer, {}],
    ["POST", "/v1/stacks/alpha/apps/hello/ab/abort", viewer, {}],
    ["POST", "/v1/stacks/alpha/events", viewer, { kind: "run-recipes", recipes: ["x::y"] }],
    ["POST", "/v1/stacks/alpha/instances/a2/enrollment", deployer],
  ];
  for (const [method, urlPath, token, json] of refusals) {
    const reply = await call(server, method, urlPath, {
      token,
      ...(json === undefined ? {} : { body: json }),
    });
    assert.deepEqual([reply.status, code(reply)], [403, "FORBIDDEN"], `${method} ${urlPath}`);
  }
  const audited = await store.listAudit({ stack: "alpha", outcome: "refused" });
  assert.ok(
    audited.some((a) => a.reason?.includes("token alpha-viewer is not deployer")),
    "refusals audited",
  );

  // A/B: no instance to deploy to → refused at once (no 202), as the CLI refuses it; status says so
  const promote = await call(server, "POST", "/v1/stacks/alpha/apps/hello/ab/promote", {
    token: deployer,
    body: {},
  });
  assert.deepEqual([promote.status, code(promote)], [422, "STACK_INVALID"], promote.text);
  assert.match(
    (promote.json as { error: { message: string } }).error.message,
    /no online instance of layers app to deploy hello to/,
  );
  const badStrategy = await call(server, "POST", "/v1/stacks/alpha/apps/hello/ab/abort", {
    token: deployer,
    body: { strategy: "sideways" },
  });
  assert.equal(code(badStrategy), "REQUEST_INVALID");
  const abStatus = await call(server, "GET", "/v1/stacks/alpha/apps/hello/ab", { token: viewer });
  assert.deepEqual([abStatus.status, code(abStatus)], [422, "STACK_INVALID"], abStatus.text);

  // run-recipes: recipes required, only for that kind
  for (const bad of [
    { kind: "run-recipes" },
    { kind: "configure", recipes: ["x"] },
    { kind: "run-recipes", recipes: ["../x"] },
  ])
    assert.equal(
      code(await call(server, "POST", "/v1/stacks/alpha/events", { token: deployer, body: bad })),
      "REQUEST_INVALID",
      JSON.stringify(bad),
    );

  // enrollment of an instance in the stack file that was never started; not of one that is in no file
  const enroll = await call(server, "POST", "/v1/stacks/alpha/instances/a2/enrollment", { token: admin });
  assert.equal(enroll.status, 201, enroll.text);
  assert.match((enroll.json as { token: string }).token, /./);
  assert.equal(
    code(await call(server, "POST", "/v1/stacks/alpha/instances/a9/enrollment", { token: admin })),
    "NOT_FOUND",
  );

  // the CLI: the same --json through the server as in the kitchen
  const env = await loginTo(server, kitchen);
  // the exit code as `status`, as the assertions below read it
  const cli = async (args: string[]) => {
    const result = await cliAsync(args, kitchen, env);
    return { ...result, status: result.code };
  };
  // an event first, so that history has something to show
  const configured = await cli(["run", "configure", "--stack", "alpha", "--json"]);
  assert.equal(configured.status, 0, configured.stderr);
  // run-recipes runs in the server as an event of its own; the same outcome as in the kitchen
  const recipes = ["run-recipes", "app::missing", "--stack", "alpha", "--layer", "app", "--json"];
  const recipesRemote = await cli(recipes);
  const recipesLocal = await cli([...recipes, "--server", "local"]);
  assert.equal(recipesRemote.status, recipesLocal.status, `${recipesRemote.stdout} ${recipesRemote.stderr}`);
  const shape = (out: string) => {
    const { events, stack } = JSON.parse(out) as {
      stack: string;
      events: { kind: string; status: string; outcomes: object }[];
    };
    return { stack, events: events.map((e) => [e.kind, e.status, Object.keys(e.outcomes)]) };
  };
  assert.deepEqual(shape(recipesRemote.stdout), shape(recipesLocal.stdout));
  assert.equal(shape(recipesRemote.stdout).events[0]?.[0], "run-recipes", recipesRemote.stdout);
  for (const args of [
    ["instance", "runs", "a1", "--stack", "alpha"],
    ["instance", "runs", "a1", "--stack", "alpha", "--limit", "2", "--report"],
    ["instance", "runs", "a2", "--stack", "alpha"],
    ["stack", "status", "alpha"],
    ["history", "--stack", "alpha"],
  ]) {
    const local = await cli([...args, "--json", "--server", "local"]);
    const remote = await cli([...args, "--json", "--server", server.url]);
    assert.equal(local.status, 0, local.stderr);
    assert.equal(remote.status, 0, remote.stderr);
    assert.deepEqual(JSON.parse(remote.stdout), JSON.parse(local.stdout), args.join(" "));
  }
  const status = JSON.parse((await cli(["stack", "status", "alpha", "--json"])).stdout);
  assert.deepEqual(
    status.agents.map((a: { instance: string; lastRun: { status: string } }) => [
      a.instance,
      a.lastRun.status,
    ]),
    [["a1", "failed"]],
  );
  const text = await cli(["stack", "status", "alpha"]);
  assert.match(text.stdout, /a1 +drift report failed: changed 0, failed 1/);
  const runsText = await cli(["instance", "runs", "a1", "--stack", "alpha"]);
  assert.match(runsText.stdout, /#2 +drift report +drift +changed 2 failed 0/);
  // the same errors and exit codes both ways
  for (const args of [
    ["ab", "promote", "hello", "--stack", "alpha"],
    ["ab", "abort", "hello", "--stack", "alpha"],
    ["ab", "status", "hello", "--stack", "alpha"],
    ["instance", "runs", "a9", "--stack", "alpha"],
    ["history", "--stack", "alpha", "--event", "999"],
  ]) {
    const local = await cli([...args, "--json", "--server", "local"]);
    const remote = await cli([...args, "--json", "--server", server.url]);
    assert.notEqual(local.status, 0, args.join(" "));
    assert.equal(remote.status, local.status, `${args.join(" ")}: ${remote.stdout} ${remote.stderr}`);
    assert.equal(JSON.parse(remote.stdout).error.code, JSON.parse(local.stdout).error.code, args.join(" "));
  }
});
