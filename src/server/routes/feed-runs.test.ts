import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { type TestContext, test } from "node:test";
import type { FeedEntry } from "../../store/store.ts";
import { enrolled, TestAgent } from "../agents/testing.ts";
import { openSse } from "../feed-testing.ts";
import { cliAsync } from "../../../test/support/cli.ts";
import { call, testServer } from "../test-support.ts";

// Real runs write their progress to the feed: an event and a deployment started through the API
// on an instance whose host refuses connections (127.0.0.1:1, no host needed): each host's phases
// under event:ID (and deployment:ID for a deployment's events), its end as a log line, the
// deployment's steps and news under deployment:ID, as a client streaming the subject sees them.

const stackText = `name: alpha
cookbooks: ../cookbooks
layers:
  - name: app
    recipes:
      configure: [site::configure]
apps:
  - name: hello
    layers: [app]
    source: { type: archive, url: ../hello.tar.gz }
    release: {}
instances:
  - { name: a1, layers: [app], provider: { type: ssh, address: 127.0.0.1, port: 1 } }
`;

/** A whole server whose stack alpha has one instance, a1, online as far as the store knows (its host refuses connections). */
async function alphaServer(t: TestContext) {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  const recipes = path.join(kitchen, "cookbooks", "site", "recipes");
  await fs.mkdir(recipes, { recursive: true });
  await fs.mkdir(path.join(kitchen, "stacks"));
  await fs.writeFile(
    path.join(kitchen, "cookbooks", "site", "cookbook.yaml"),
    "name: site\nversion: 1.0.0\n",
  );
  await fs.writeFile(
    path.join(recipes, "configure.ts"),
    `export default function (r) { r.file("/tmp/galley-feed-test", { content: "x" }); }\n`,
  );
  const app = path.join(kitchen, "app");
  await fs.mkdir(app);
  await fs.writeFile(path.join(app, "server.js"), "// hello\n");
  execFileSync("tar", ["czf", path.join(kitchen, "hello.tar.gz"), "-C", app, "."]);
  await fs.writeFile(path.join(kitchen, "stacks", "alpha.yaml"), stackText);
  // a1 is online as far as the store knows; its host refuses connections
  const opened = await call(server, "GET", "/v1/stacks/alpha", { token: server.adminToken });
  assert.equal(opened.status, 200, opened.text);
  assert.equal(opened.json && (opened.json as { invalid?: unknown }).invalid, undefined, opened.text);
  await server.ctx.store.upsertInstance({
    stack: "alpha",
    name: "a1",
    layers: ["app"],
    provider: "ssh",
    address: "127.0.0.1",
    hostname: "a1",
  });
  await server.ctx.store.setInstanceStatus("alpha", "a1", "online", "test");

  return server;
}

test("an event and a deployment started through the API write their hosts' phases and logs", async (t) => {
  const server = await alphaServer(t);
  const token = server.adminToken;
  // an event: configure
  const started = await call(server, "POST", "/v1/stacks/alpha/events", {
    token,
    body: { kind: "configure" },
  });
  assert.equal(started.status, 202, started.text);
  const eventId = (started.json as { id: number }).id;
  const stream = await openSse(server, `/v1/stacks/alpha/feed/stream?after=0&subject=event:${eventId}`, {
    token,
  });
  t.after(() => stream.close());
  const data = (e: FeedEntry) =>
    e.data as { instance?: string; phase?: string; status?: string; line?: string };
  const parsed = () => stream.events.map((e) => JSON.parse(e.data) as FeedEntry);
  await stream.until(() => parsed().some((e) => e.kind === "event" && data(e).status === "failed"), 30_000);
  const eventEntries = parsed();
  const phases = eventEntries.filter((e) => e.kind === "phase").map((e) => data(e).phase);
  assert.ok(phases.includes("connecting"), phases.join(", "));
  assert.equal(phases.at(-1), "done");
  assert.equal(data(eventEntries.filter((e) => e.kind === "phase").at(-1)!).status, "unreachable");
  const logs = eventEntries.filter((e) => e.kind === "log").map((e) => data(e).line ?? "");
  assert.ok(
    logs.some((l) => /^a1: unreachable: /.test(l)),
    logs.join("\n"),
  );
  // the store's own entries share the subject: the event and the instance's outcome
  assert.ok(eventEntries.some((e) => e.kind === "outcome" && data(e).instance === "a1"));
  // in order
  const ids = stream.events.map((e) => Number(e.id));
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
  );

  // a deployment: its steps, news and its events' host phases under deployment:ID
  // (the event found the host gone: online again, as far as the store knows)
  await server.ctx.store.setInstanceStatus("alpha", "a1", "online", "test");
  const deployed = await call(server, "POST", "/v1/stacks/alpha/deployments", {
    token,
    body: { app: "hello", strategy: "cutover" },
  });
  assert.equal(deployed.status, 202, deployed.text);
  const deploymentId = (deployed.json as { id: number }).id;
  const watch = await openSse(
    server,
    `/v1/stacks/alpha/feed/stream?after=0&subject=deployment:${deploymentId}`,
    { token },
  );
  t.after(() => watch.close());
  const deployment = () => watch.events.map((e) => JSON.parse(e.data) as FeedEntry);
  await watch.until(
    () =>
      deployment().some(
        (e) => e.kind === "deployment" && !["pending", "running"].includes(data(e).status ?? "running"),
      ),
    60_000,
  );
  // the run's own entries are batched: all written once its background action ended
  for (;;) {
    const shown = await call(server, "GET", `/v1/deployments/${deploymentId}`, { token });
    if ((shown.json as { action?: { status: string } }).action?.status !== "running") break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const last = await server.ctx.store.lastFeedId();
  const subjectLast = (
    await server.ctx.store.readFeed({ subject: `deployment:${deploymentId}`, order: "desc", limit: 1 })
  )[0]!.id;
  assert.ok(subjectLast <= last);
  await watch.until((events) => events.some((e) => Number(e.id) === subjectLast), 5000);
  const entries = deployment();
  const kinds = new Set(entries.map((e) => e.kind));
  for (const kind of ["deployment", "step", "phase", "log"])
    assert.ok(kinds.has(kind as never), `${kind} in ${[...kinds]}`);
  const hostPhases = entries.filter((e) => e.kind === "phase" && data(e).phase === "connecting");
  assert.ok(hostPhases.length > 0, "the prepare event's host phases are in the deployment's subject");
  assert.ok(
    entries.some((e) => e.kind === "log" && /^deployment #\d+: hello/.test(data(e).line ?? "")),
    "the deployment's news",
  );
  assert.ok(
    entries.some((e) => e.kind === "phase" && data(e).phase === "prepare" && data(e).status === "failed"),
    "the prepare step as a phase",
  );
});

test("a run from a terminal (galley run on the kitchen) shows in the server's streams", async (t) => {
  const server = await alphaServer(t);
  const stream = await openSse(server, "/v1/stacks/alpha/feed/stream?kinds=event,phase,log", {
    token: server.adminToken,
  });
  t.after(() => stream.close());
  const run = await cliAsync(
    ["run", "configure", "--stack", "stacks/alpha.yaml", "--server", "local"],
    server.kitchen,
  );
  assert.equal(run.code, 4, run.stderr); // the host is unreachable
  assert.match(run.stderr, /a1/, "the terminal still prints");
  const entries = () => stream.events.map((e) => JSON.parse(e.data) as FeedEntry);
  await stream.until(
    () =>
      entries().some((e) => e.kind === "log" && /^a1: unreachable/.test((e.data as { line: string }).line)),
    5000,
  );
  const phases = entries()
    .filter((e) => e.kind === "phase")
    .map((e) => (e.data as { phase: string }).phase);
  assert.ok(phases.includes("connecting") && phases.includes("done"), phases.join(", "));
  assert.ok(
    entries().every((e) => e.kind !== "log" || e.subject?.startsWith("event:") || e.subject === undefined),
  );
  // galley deploy from the terminal: its news and its events' phases under deployment:ID
  await server.ctx.store.setInstanceStatus("alpha", "a1", "online", "test");
  const deploy = await cliAsync(
    ["deploy", "hello", "--stack", "stacks/alpha.yaml", "--strategy", "cutover", "--server", "local"],
    server.kitchen,
  );
  assert.equal(deploy.code, 1, deploy.stderr);
  await stream.until(
    () =>
      entries().some(
        (e) => e.kind === "log" && /^deployment #\d+: hello/.test((e.data as { line: string }).line),
      ),
    5000,
  );
  // the CLI has ended: everything it wrote comes (the server polls for another process's entries)
  await stream.until(
    () =>
      entries().some(
        (e) =>
          e.subject?.startsWith("deployment:") === true &&
          e.kind === "phase" &&
          (e.data as { phase: string }).phase === "connecting",
      ),
    5000,
  );
});

test("agents connecting and going away are agent entries under instance:NAME", async (t) => {
  const server = await alphaServer(t);
  const stream = await openSse(server, "/v1/stacks/alpha/feed/stream?kinds=agent", {
    token: server.adminToken,
  });
  t.after(() => stream.close());
  const { privateKey } = await enrolled(server.ctx.store, "alpha", "a1");
  const fixture = {
    channelUrl: `${server.url.replace(/^https:/, "wss:")}/v1/agents/channel`,
    ca: server.caPem,
  };
  const agent = await TestAgent.connect(fixture, "alpha", "a1", privateKey);
  await stream.until((e) => e.length >= 1);
  agent.close();
  await stream.until((e) => e.length >= 2);
  const entries = stream.events.map((e) => JSON.parse(e.data) as FeedEntry);
  assert.deepEqual(
    entries.map((e) => [e.kind, e.subject, (e.data as { connected: boolean }).connected]),
    [
      ["agent", "instance:a1", true],
      ["agent", "instance:a1", false],
    ],
  );
  assert.equal(typeof (entries[1]!.data as { reason?: string }).reason, "string");
});

test("an instance started with { wait: false }: its statuses as lines, its events' phases, no kitchen path", async (t) => {
  const server = await alphaServer(t);
  const token = server.adminToken;
  await server.ctx.store.setInstanceStatus("alpha", "a1", "stopped", "test");
  const stream = await openSse(server, "/v1/stacks/alpha/feed/stream?kinds=phase,log", { token });
  t.after(() => stream.close());
  const started = await call(server, "POST", "/v1/stacks/alpha/instances/a1/start", {
    token,
    body: { wait: false },
  });
  assert.equal(started.status, 202, started.text);
  const entries = () => stream.events.map((e) => JSON.parse(e.data) as FeedEntry);
  const line = (e: FeedEntry) => (e.data as { line?: string }).line ?? "";
  // no setup recipes: online at once; the configure that follows finds the host gone
  await stream.until(() => entries().some((e) => /^a1: connection_lost: /.test(line(e))), 20_000);
  const lines = entries()
    .map(line)
    .filter((l) => l !== "");
  for (const expected of ["a1: booting: making its host", "a1: online: setup and deploy done"])
    assert.ok(lines.includes(expected), `${expected} in ${lines.join("\n")}`);
  const configure = entries().filter((e) => e.kind === "phase" && e.subject?.startsWith("event:"));
  assert.equal((configure.at(-1)!.data as { status: string }).status, "unreachable");
  assert.ok(
    lines.some((l) => l.includes("--stack stacks/alpha.yaml")),
    lines.join("\n"),
  );
  assert.ok(!JSON.stringify(entries()).includes(server.kitchen), "no kitchen path in the feed");
});
