import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { makeKitchen, recipe } from "../../../test/support/kitchen.ts";
import { compileRunList } from "../../cookbooks/solo.ts";
import { converge } from "../../core/converge.ts";
import type { Report } from "../../core/report.ts";
import { processSecrets, registerSecrets, Secrets, withSecrets } from "../../core/secrets.ts";
import { LocalHost } from "../../hosts/local.ts";
import { resourceTypes } from "../../resources/index.ts";
import { tempDir } from "../../resources/testing.ts";
import { openSqliteStore, storeFile } from "../../store/sqlite.ts";
import { mintToken } from "../auth.ts";
import { call, testServer } from "../test-support.ts";
import { reportCounts } from "./reports.ts";

// An instance's reports over the API: real converge reports (the engine run on this machine, in a
// temp dir) recorded through the store as a lifecycle records them (a store opened in the run's
// secrets scope), then read as the panel reads them: the list counted, one outcome with its report
// and log, one agent run with its report. The run had a stack secret (registered as a stack's
// decrypted secrets: file registers its values) and a resource marked sensitive: neither value
// shows in any answer, and their diffs say "(sensitive)".

const password = "pw-4b7e1f9a2c-stack-secret";
const token = "tk-8d3c6a0e5f-sensitive-file";

/** Converges a recipe writing three files (one with the stack's secret, one marked sensitive) on this machine. */
async function convergeReport(out: string): Promise<Report> {
  const body = [
    `r.file("${out}/motd", { content: "hello\\n" });`,
    `r.file("${out}/db.conf", { content: "password=${password}\\n", mode: 0o600 });`,
    `r.file("${out}/token", { content: "${token}\\n", sensitive: true });`,
    `r.file("/proc/galley-cannot-write-here/x", { content: "x\\n" });`,
  ].join("\n");
  const root = await makeKitchen({ web: { recipes: { default: recipe(body) } } });
  const host = new LocalHost("box");
  const catalog = await compileRunList({
    runList: ["web"],
    cookbooksDir: path.join(root, "cookbooks"),
    attributeFiles: [],
    host,
    types: resourceTypes,
  });
  return converge(catalog, host, { mode: "apply", stateDir: await tempDir(), types: resourceTypes });
}

test("instance reports, one outcome, one agent run: counted, by grant, and never a secret", async (t) => {
  const server = await testServer(t, { whole: true });
  const { kitchen } = server;
  await fs.mkdir(path.join(kitchen, "cookbooks"));
  await fs.mkdir(path.join(kitchen, "stacks"));
  const stackText = (name: string, instances: string[]) =>
    `name: ${name}\ncookbooks: ../cookbooks\nlayers:\n  - name: app\ninstances:\n${instances
      .map((i) => `  - { name: ${i}, layers: [app] }`)
      .join("\n")}\n`;
  await fs.writeFile(path.join(kitchen, "stacks", "alpha.yaml"), stackText("alpha", ["a1", "a2", "a3"]));
  await fs.writeFile(path.join(kitchen, "stacks", "beta.yaml"), stackText("beta", ["b1"]));
  const out = await tempDir("galley-report-out-");

  // the run: its secrets scope, the stack's secret registered, its store opened inside it
  const run = new Secrets(processSecrets);
  const { report, ids } = await withSecrets(run, async () => {
    registerSecrets([password]);
    const report = await convergeReport(out);
    const store = openSqliteStore(storeFile(kitchen));
    try {
      const ids: number[] = [];
      const outcome = async (
        instance: string,
        status: "succeeded" | "failed" | "connection_lost",
        withReport: boolean,
      ) => {
        const event = await store.createEvent({ stack: "alpha", kind: "configure", stateVersion: 1 });
        await store.startEvent(event.id);
        await store.recordInstanceOutcome({
          eventId: event.id,
          instance,
          status,
          stateVersion: 1,
          bundle: "f".repeat(64),
          ...(withReport ? { report } : {}),
          // a log may quote what a recipe printed: the store scrubs the run's secrets
          log: `configure on ${instance}\nconnecting with password ${password}\n`,
          startedAt: "2026-12-04T03:00:00.000Z",
          finishedAt: "2026-12-04T03:00:05.000Z",
        });
        await store.finishEvent(event.id, status === "succeeded" ? "succeeded" : "failed");
        ids.push(event.id);
      };
      await outcome("a1", "failed", true);
      await outcome("a2", "succeeded", true);
      await outcome("a1", "connection_lost", false);
      await outcome("a1", "failed", true);
      const { publicKey } = generateKeyPairSync("ed25519");
      await store.registerAgent({
        stack: "alpha",
        instance: "a1",
        publicKey: publicKey.export({ type: "spki", format: "pem" }).toString(),
      });
      for (const seq of [0, 1])
        await store.recordAgentRun({
          stack: "alpha",
          instance: "a1",
          generation: 1,
          seq,
          kind: "drift",
          mode: "enforce",
          status: "failed",
          changed: report.summary.changed,
          failed: report.summary.failed,
          report,
          startedAt: `2026-12-04T03:1${seq}:00.000Z`,
          finishedAt: `2026-12-04T03:1${seq}:05.000Z`,
        });
      return { report, ids };
    } finally {
      await store.close();
    }
  });
  // the converge did what the recipe says: the secret reached the host, the report hides it
  assert.equal(await fs.readFile(path.join(out, "db.conf"), "utf8"), `password=${password}\n`);
  assert.equal(await fs.readFile(path.join(out, "token"), "utf8"), `${token}\n`);
  assert.deepEqual(
    [report.summary.changed, report.summary.failed, report.resources.length],
    [3, 1, 4],
    JSON.stringify(report.summary),
  );
  const diffOf = (id: string) => report.resources.find((r) => r.id === id)?.diff;
  assert.ok(
    diffOf(`file[${out}/db.conf]`)?.some((c) => c.property === "content" && c.to === "(sensitive)"),
    JSON.stringify(diffOf(`file[${out}/db.conf]`)),
  );
  assert.ok(diffOf(`file[${out}/token]`)?.some((c) => c.property === "content" && c.to === "(sensitive)"));
  assert.ok(diffOf(`file[${out}/motd]`)?.some((c) => c.property === "content" && c.to !== "(sensitive)"));

  const store = server.ctx.store;
  const mint = async (name: string, stack: string, role: "viewer" | "deployer" | "admin") =>
    (await mintToken(store, { name, grants: [{ stack, role }] })).secret;
  const admin = server.adminToken;
  const viewer = await mint("alpha-viewer", "alpha", "viewer");
  const betaAdmin = await mint("beta-admin", "beta", "admin");
  const code = (reply: { json: unknown }) => (reply.json as { error?: { code: string } }).error?.code;
  const answers: string[] = [];
  const get = async (urlPath: string, as = viewer) => {
    const reply = await call(server, "GET", urlPath, { token: as });
    answers.push(reply.text);
    return reply;
  };

  // the OpenAPI document lists the three routes, viewer's
  const doc = (await call(server, "GET", "/v1/openapi.json")).json as {
    paths: Record<string, Record<string, { "x-galley-role"?: string }>>;
  };
  for (const p of [
    "/v1/stacks/{stack}/instances/{name}/reports",
    "/v1/events/{id}/instances/{name}",
    "/v1/stacks/{stack}/instances/{name}/runs/{generation}/{seq}",
  ])
    assert.equal(doc.paths[p]?.get?.["x-galley-role"], "viewer", p);

  // the list: newest first, counted from each report, no report bodies
  const list = await get("/v1/stacks/alpha/instances/a1/reports");
  assert.equal(list.status, 200, list.text);
  type Entry = {
    eventId: number;
    event: { id: number; kind: string; status: string; createdAt: string };
    status: string;
    startedAt: string;
    finishedAt: string | null;
    bundle: string | null;
    changed: number | null;
    failed: number | null;
    resources: number | null;
  };
  const reports = (list.json as { reports: Entry[] }).reports;
  assert.deepEqual(
    reports.map((r) => [r.eventId, r.event.id, r.event.kind, r.status, r.changed, r.failed, r.resources]),
    [
      [ids[3], ids[3], "configure", "failed", 3, 1, 4],
      [ids[2], ids[2], "configure", "connection_lost", null, null, null],
      [ids[0], ids[0], "configure", "failed", 3, 1, 4],
    ],
  );
  assert.deepEqual(
    [reports[0]!.bundle, reports[0]!.startedAt, reports[0]!.finishedAt, reports[0]!.event.status],
    ["f".repeat(64), "2026-12-04T03:00:00.000Z", "2026-12-04T03:00:05.000Z", "failed"],
  );
  assert.ok(!list.text.includes('"report"') && !list.text.includes('"log"'), "no bodies in the list");
  // paging: limit, then before the oldest seen
  const page = (await get("/v1/stacks/alpha/instances/a1/reports?limit=2")).json as { reports: Entry[] };
  assert.deepEqual(
    page.reports.map((r) => r.eventId),
    [ids[3], ids[2]],
  );
  const next = (await get(`/v1/stacks/alpha/instances/a1/reports?limit=2&before=${ids[2]}`)).json as {
    reports: Entry[];
  };
  assert.deepEqual(
    next.reports.map((r) => r.eventId),
    [ids[0]],
  );
  // an instance of the file that never ran: none; one of no file and no record: 404
  const none = await get("/v1/stacks/alpha/instances/a3/reports");
  assert.deepEqual([none.status, (none.json as { reports: unknown[] }).reports], [200, []]);
  assert.equal(code(await get("/v1/stacks/alpha/instances/a9/reports")), "NOT_FOUND");
  assert.equal(code(await get("/v1/stacks/zeta/instances/a1/reports", admin)), "NOT_FOUND");

  // one outcome: its report and log, scrubbed
  const one = await get(`/v1/events/${ids[0]}/instances/a1`);
  assert.equal(one.status, 200, one.text);
  const { event, outcome } = one.json as {
    event: { id: number; stack: string; kind: string };
    outcome: { instance: string; status: string; report: Report; log: string };
  };
  assert.deepEqual([event.id, event.stack, event.kind], [ids[0], "alpha", "configure"]);
  assert.deepEqual([outcome.instance, outcome.status], ["a1", "failed"]);
  assert.deepEqual(outcome.report.summary, report.summary);
  assert.deepEqual(
    outcome.report.resources.map((r) => [r.id, r.status]),
    report.resources.map((r) => [r.id, r.status]),
  );
  assert.match(outcome.log, /connecting with password \(sensitive\)/);
  assert.equal(code(await get(`/v1/events/${ids[1]}/instances/a1`)), "NOT_FOUND", "a2's event, not a1's");
  assert.equal(code(await get("/v1/events/99999/instances/a1", admin)), "NOT_FOUND");

  // one agent run, with its report
  const agentRun = await get("/v1/stacks/alpha/instances/a1/runs/1/0");
  assert.equal(agentRun.status, 200, agentRun.text);
  const { run: got } = agentRun.json as { run: { seq: number; generation: number; report: Report } };
  assert.deepEqual([got.generation, got.seq, got.report.summary], [1, 0, report.summary]);
  assert.equal(code(await get("/v1/stacks/alpha/instances/a1/runs/1/7")), "NOT_FOUND");
  assert.equal(code(await get("/v1/stacks/alpha/instances/a1/runs/2/0")), "NOT_FOUND");

  // what else the panel reads of this stack holds no secret either
  await get("/v1/stacks/alpha/summary");
  await get("/v1/overview");
  await get(`/v1/events/${ids[0]}`);
  for (const text of answers) {
    assert.ok(!text.includes(password), `the stack's secret in ${text.slice(0, 200)}`);
    assert.ok(!text.includes(token), `a sensitive file's content in ${text.slice(0, 200)}`);
  }

  // authorization: another stack's token 403 (also through the event's stack), no token 401
  for (const urlPath of [
    "/v1/stacks/alpha/instances/a1/reports",
    `/v1/events/${ids[0]}/instances/a1`,
    "/v1/stacks/alpha/instances/a1/runs/1/0",
  ]) {
    const refused = await call(server, "GET", urlPath, { token: betaAdmin });
    assert.deepEqual([refused.status, code(refused)], [403, "FORBIDDEN"], urlPath);
    assert.equal((await call(server, "GET", urlPath)).status, 401, urlPath);
  }
  // bad input: 400 naming the field
  for (const [urlPath, field] of [
    ["/v1/stacks/alpha/instances/a1/reports?limit=0", /^query\.limit: /],
    ["/v1/stacks/alpha/instances/a1/reports?before=x", /^query\.before: /],
    ["/v1/stacks/alpha/instances/A1/reports", /^path\.name: /],
    ["/v1/events/0/instances/a1", /^path\.id: /],
    ["/v1/events/1/instances/a%2Fb", /^path\.name: /],
    ["/v1/stacks/alpha/instances/a1/runs/x/0", /^path\.generation: /],
    ["/v1/stacks/alpha/instances/a1/runs/1/-1", /^path\.seq: /],
  ] as const) {
    const reply = await call(server, "GET", urlPath, { token: admin });
    assert.equal(reply.status, 400, `${urlPath}: ${reply.text}`);
    assert.match((reply.json as { error: { message: string } }).error.message, field, urlPath);
  }
});

test("reportCounts: from the summary, else counted from the resources; null without a report", () => {
  assert.deepEqual(reportCounts(undefined), { changed: null, failed: null, resources: null });
  assert.deepEqual(reportCounts({ summary: { changed: 2, failed: 1 }, resources: [{}, {}, {}] }), {
    changed: 2,
    failed: 1,
    resources: 3,
  });
  assert.deepEqual(
    reportCounts({
      resources: [{ status: "changed" }, { status: "failed", ignored: true }, { status: "failed" }],
    }),
    { changed: 1, failed: 1, resources: 3 },
  );
});
