import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { promisify } from "node:util";
import { GalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import { storeConformance, storeSecretsEverywhere } from "./conformance.ts";
import { agentRun, secretHash } from "./conformance-server.ts";
import { migrate, schemaVersion } from "./migrations.ts";
import { openSqliteStore, storeFile } from "./sqlite.ts";
import type { Store } from "./store.ts";

const run = promisify(execFile);

async function fresh(): Promise<{ file: string; store: Store }> {
  const file = storeFile(await tempDir("galley-store-"));
  return { file, store: openSqliteStore(file) };
}

let last = "";
storeConformance("sqlite", {
  fresh: async (secrets) => {
    last = storeFile(await tempDir("galley-store-"));
    return openSqliteStore(last, { secrets });
  },
  again: async () => openSqliteStore(last),
});

function versions(file: string): unknown[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT version, applied_at FROM schema_version ORDER BY version").all();
  } finally {
    db.close();
  }
}

test("creates <kitchen>/.galley/galley.db in WAL mode with foreign keys on", async () => {
  const kitchen = await tempDir("galley-store-");
  const store = openSqliteStore(storeFile(kitchen));
  await store.saveStack("web", { name: "web" });
  assert.ok(existsSync(path.join(kitchen, ".galley", "galley.db")));
  assert.ok(existsSync(path.join(kitchen, ".galley", "galley.db-wal")), "a WAL file while open");
  const db = new DatabaseSync(storeFile(kitchen));
  assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
  db.close();
  // foreign keys on: an outcome of an event that does not exist is refused
  await assert.rejects(
    store.recordInstanceOutcome({ eventId: 42, instance: "a", status: "running", startedAt: "t" }),
    (error: unknown) =>
      error instanceof GalleyError && error.code === "STATE_INVALID" && /no event 42/.test(error.message),
  );
  await store.close();
});

const modeOf = (file: string) => (statSync(file).mode & 0o777).toString(8);

test("a new store is private: .galley 0700, the database and its -wal and -shm files 0600", async () => {
  const kitchen = await tempDir("galley-store-");
  // a group-writable umask, as many Linux distributions give users: the modes must not depend on it
  const umask = process.umask(0o002);
  let store: Store;
  try {
    store = openSqliteStore(storeFile(kitchen));
  } finally {
    process.umask(umask);
  }
  await store.saveStack("web", { name: "web" });
  const file = storeFile(kitchen);
  assert.equal(modeOf(path.dirname(file)), "700");
  for (const each of [file, `${file}-wal`, `${file}-shm`]) assert.equal(modeOf(each), "600", each);
  await store.close();
});

test("an existing world-readable store and its folder are tightened when opened", async () => {
  const kitchen = await tempDir("galley-store-");
  const file = storeFile(kitchen);
  mkdirSync(path.dirname(file), { mode: 0o755 });
  chmodSync(path.dirname(file), 0o755);
  await openSqliteStore(file).close();
  // as an older Galley left them: a 0644 database, its WAL and shared memory open by another process
  chmodSync(path.dirname(file), 0o755);
  chmodSync(file, 0o644);
  const other = new DatabaseSync(file);
  other.exec(
    "PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS other (x INTEGER); INSERT INTO other VALUES (1)",
  );
  for (const each of [`${file}-wal`, `${file}-shm`]) chmodSync(each, 0o644);
  try {
    const store = openSqliteStore(file);
    assert.equal(modeOf(path.dirname(file)), "700");
    for (const each of [file, `${file}-wal`, `${file}-shm`]) assert.equal(modeOf(each), "600", each);
    await store.close();
  } finally {
    other.close();
  }
});

test("migrations apply once: reopening applies nothing again", async () => {
  const { file, store } = await fresh();
  await store.close();
  const first = versions(file);
  assert.equal(first.length, schemaVersion);
  await openSqliteStore(file).close();
  assert.deepEqual(versions(file), first);

  const db = new DatabaseSync(path.join(path.dirname(file), "plain.db"));
  const list = [
    { version: 1, description: "a", sql: "CREATE TABLE a (x INTEGER)" },
    { version: 2, description: "b", sql: "CREATE TABLE b (x INTEGER)" },
  ];
  assert.deepEqual(migrate(db, "plain.db", list), [1, 2]);
  assert.deepEqual(migrate(db, "plain.db", list), []);
  // a failing migration leaves its version unapplied and none of its statements behind
  const broken = [...list, { version: 3, description: "c", sql: "CREATE TABLE c (x INTEGER); NOT SQL" }];
  assert.throws(() => migrate(db, "plain.db", broken));
  assert.equal(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'c'").get()?.n, 0);
  assert.equal(db.prepare("SELECT max(version) AS v FROM schema_version").get()?.v, 2);
  db.close();
});

test("a database from a newer Galley is refused with a hint", async () => {
  const { file, store } = await fresh();
  await store.close();
  const db = new DatabaseSync(file);
  db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(
    schemaVersion + 1,
    "later",
  );
  db.close();
  assert.throws(
    () => openSqliteStore(file),
    (error: unknown) =>
      error instanceof GalleyError &&
      error.code === "STATE_INVALID" &&
      error.message.includes(file) &&
      error.message.includes(`version ${schemaVersion + 1}`) &&
      /upgrade Galley/.test(error.hint ?? ""),
  );
});

test("a file that is not a database is a clear error naming it", async () => {
  const file = path.join(await tempDir("galley-store-"), "galley.db");
  writeFileSync(file, "this is not SQLite, just text long enough to fill a header page...".repeat(20));
  assert.throws(
    () => openSqliteStore(file),
    (error: unknown) =>
      error instanceof GalleyError && error.code === "STATE_INVALID" && error.message.includes(file),
  );
});

test("a registered secret never reaches the database file (nor its WAL)", async () => {
  const { file, store } = await fresh();
  const { secret, tricky } = await storeSecretsEverywhere(store);
  await store.close();
  const bytes = [file, `${file}-wal`, `${file}-shm`]
    .filter((name) => existsSync(name))
    .map((name) => readFileSync(name).toString("latin1"))
    .join("");
  assert.ok(bytes.includes("(sensitive)"), "the redaction marker is stored");
  assert.ok(!bytes.includes(secret), "the secret is not in the file");
  assert.ok(!bytes.includes(tricky), "nor the secret that spanned JSON syntax");
});

test("an event and each instance's outcome keep the bundle id of the cookbooks they ran", async () => {
  const { store } = await fresh();
  const id = "a".repeat(64);
  const event = await store.createEvent({ stack: "web", kind: "setup" });
  await store.startEvent(event.id);
  await store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "running",
    bundle: id,
    startedAt: "t1",
  });
  await store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "succeeded",
    bundle: id,
    startedAt: "t1",
    finishedAt: "t2",
  });
  await store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app2",
    status: "failed",
    startedAt: "t1",
  });
  assert.equal((await store.finishEvent(event.id, "failed", id)).bundle, id);
  const detail = (await store.getEvent(event.id))!;
  assert.equal(detail.bundle, id);
  assert.equal(detail.outcomes[0]!.bundle, id);
  // an outcome that never resolved cookbooks records none
  assert.ok(!("bundle" in detail.outcomes[1]!));
  assert.equal((await store.listEvents("web"))[0]!.bundle, id);
  await store.close();
});

test("a store of schema 1 gains the bundle columns; its events keep their data, without a bundle", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  const { migrations } = await import("./migrations.ts");
  migrate(db, file, migrations.slice(0, 1));
  db.exec(
    "INSERT INTO events (stack, kind, args, status, created_at) VALUES ('web', 'setup', '{}', 'succeeded', 't')",
  );
  db.close();
  const store = openSqliteStore(file);
  const [event] = await store.listEvents("web");
  assert.equal(event!.kind, "setup");
  assert.ok(!("bundle" in event!));
  assert.deepEqual(
    versions(file).map((v) => (v as { version: number }).version),
    migrations.map((m) => m.version),
  );
  await store.close();
});

test("a store of schema 2 gains deployments; its instances are in service", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  const { migrations } = await import("./migrations.ts");
  migrate(db, file, migrations.slice(0, 2));
  db.exec(
    "INSERT INTO instances (stack, name, layers, provider, status, updated_at) VALUES ('web', 'app1', '[\"app\"]', 'ssh', 'online', 't')",
  );
  db.close();
  const store = openSqliteStore(file);
  const instance = await store.getInstance("web", "app1");
  assert.equal(instance?.status, "online");
  assert.equal(instance?.inService, true);
  assert.deepEqual(await store.listDeployments("web"), []);
  const deployment = await store.createDeployment({
    stack: "web",
    app: "hello",
    revision: "c".repeat(40),
    requested: "main",
    attributes: {},
    strategy: "rolling",
    params: {},
    user: "me@here",
    migration: "none",
  });
  assert.equal((await store.getDeployment(deployment.id))?.status, "pending");
  await store.close();
});

test("the migration claim is atomic across processes: of four, one claims", async () => {
  const { file, store } = await fresh();
  const deployment = await store.createDeployment({
    stack: "web",
    app: "hello",
    revision: "c".repeat(40),
    requested: "main",
    attributes: {},
    strategy: "rolling",
    params: {},
    user: "me@here",
    migration: "pending",
  });
  const sqlite = new URL("./sqlite.ts", import.meta.url).href;
  const claim = (instance: string) =>
    run(process.execPath, [
      "--input-type=module",
      "--no-warnings",
      "-e",
      `import { openSqliteStore } from ${JSON.stringify(sqlite)};
       const store = openSqliteStore(${JSON.stringify(file)});
       process.stdout.write(await store.claimMigration(${deployment.id}, ${JSON.stringify(instance)}));
       await store.close();`,
    ]);
  const instances = ["app1", "app2", "app3", "app4"];
  const results = (await Promise.all(instances.map(claim))).map((r) => r.stdout);
  assert.deepEqual([...results].sort(), ["claimed", "running", "running", "running"]);
  const claimed = await store.getDeployment(deployment.id);
  assert.equal(claimed?.migrationInstance, instances[results.indexOf("claimed")]);
  await store.close();
});

test("a one-time enrollment is consumed once across processes: of four, one enrolls", async () => {
  const { file, store } = await fresh();
  const hash = secretHash();
  await store.createEnrollment({
    stack: "web",
    instance: "app1",
    hash,
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const sqlite = new URL("./sqlite.ts", import.meta.url).href;
  const consume = () =>
    run(process.execPath, [
      "--input-type=module",
      "--no-warnings",
      "-e",
      `import { openSqliteStore } from ${JSON.stringify(sqlite)};
       const store = openSqliteStore(${JSON.stringify(file)});
       const got = await store.consumeEnrollment(${JSON.stringify(hash)}, new Date().toISOString());
       process.stdout.write(got ? got.stack + "/" + got.instance : "none");
       await store.close();`,
    ]);
  const results = (await Promise.all([consume(), consume(), consume(), consume()])).map((r) => r.stdout);
  assert.deepEqual([...results].sort(), ["none", "none", "none", "web/app1"]);
  await store.close();
});

test("retention: agent runs beyond the newest N per instance and metrics older than the window are pruned on insert", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  const store = openSqliteStore(file, {
    retention: { every: 1, runsPerInstance: 3, metricsMs: 60 * 60_000 },
  });
  for (let seq = 1; seq <= 5; seq += 1) await store.recordAgentRun(agentRun({ seq }));
  for (let seq = 1; seq <= 2; seq += 1) await store.recordAgentRun(agentRun({ instance: "app2", seq }));
  assert.deepEqual(
    (await store.listAgentRuns("web", "app1")).map((r) => r.seq),
    [5, 4, 3],
  );
  assert.deepEqual(
    (await store.listAgentRuns("web", "app2")).map((r) => r.seq),
    [2, 1],
  );
  const old = new Date(Date.now() - 2 * 60 * 60_000).toISOString();
  const recent = new Date(Date.now() - 60_000).toISOString();
  const sample = (at: string) => ({ stack: "web", instance: "app1", at, cpu: 1, memory: 2, load: 0.5 });
  await store.recordMetrics(sample(old));
  await store.recordMetrics(sample(recent));
  assert.deepEqual(
    (await store.metricsSince("web", "2000-01-01T00:00:00.000Z")).map((m) => m.at),
    [recent],
  );
  // a fake clock in the past (a scheduler's test): its samples are kept, relative to themselves
  const past = (minutes: number) =>
    new Date(Date.parse("2020-01-01T00:00:00.000Z") + minutes * 60_000).toISOString();
  await store.recordMetrics(sample(past(0)));
  await store.recordMetrics(sample(past(30)));
  assert.deepEqual(
    (await store.metricsSince("web", "2000-01-01T00:00:00.000Z")).map((m) => m.at),
    [past(0), past(30), recent],
  );
  // an agent's clock far ahead prunes by now (the fake past goes), not by its own time
  const ahead = new Date(Date.now() + 365 * 24 * 60 * 60_000).toISOString();
  await store.recordMetrics(sample(ahead));
  assert.deepEqual(
    (await store.metricsSince("web", "2000-01-01T00:00:00.000Z")).map((m) => m.at),
    [recent, ahead],
  );
  await store.close();

  // by default: pruned on a connection's first insert and every 100th after, 500 runs kept
  const db = new DatabaseSync(file);
  const insert = db.prepare(
    `INSERT INTO agent_runs (stack, instance, generation, seq, kind, mode, status, changed, failed, started_at, finished_at, received_at)
     VALUES ('web', 'app3', 1, ?, 'drift', 'enforce', 'ok', 0, 0, 't', 't', 't')`,
  );
  for (let seq = 1; seq <= 520; seq += 1) insert.run(seq);
  db.close();
  const reopened = openSqliteStore(file);
  await reopened.recordAgentRun(agentRun({ instance: "app3", seq: 521 }));
  const kept = await reopened.listAgentRuns("web", "app3", { limit: 1000 });
  assert.equal(kept.length, 500);
  assert.equal(kept[0]?.seq, 521);
  assert.equal(kept.at(-1)?.seq, 22);
  await reopened.close();
});

test("a store of schema 4 gains the server's tables; its deployments are kept", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  const { migrations } = await import("./migrations.ts");
  migrate(db, file, migrations.slice(0, 4));
  db.exec(
    `INSERT INTO deployments (stack, app, revision, requested, attributes, strategy, params, requested_by, status, migration, created_at)
     VALUES ('web', 'hello', 'abc', 'main', '{}', 'rolling', '{}', 'me', 'succeeded', 'none', 't')`,
  );
  db.close();
  const store = openSqliteStore(file);
  assert.equal((await store.listDeployments("web"))[0]?.revision, "abc");
  assert.deepEqual(await store.listAgents(), []);
  assert.equal((await store.registerAgent({ stack: "web", instance: "app1", publicKey: "k" })).generation, 1);
  assert.equal(await store.acquireLease("scheduler", "me", 1000), true);
  assert.equal(schemaVersion, 6);
  await store.close();
});
