import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { registerSecrets } from "../core/secrets.ts";
import { tempDir } from "../resources/testing.ts";
import { migrate, schemaVersion } from "./migrations.ts";
import { openSqliteStore, storeFile } from "./sqlite.ts";
import type { InstanceStatus, Store } from "./store.ts";

async function fresh(): Promise<{ file: string; store: Store }> {
  const file = storeFile(await tempDir("galley-store-"));
  return { file, store: openSqliteStore(file) };
}

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
  store.saveStack("web", { name: "web" });
  assert.ok(existsSync(path.join(kitchen, ".galley", "galley.db")));
  assert.ok(existsSync(path.join(kitchen, ".galley", "galley.db-wal")), "a WAL file while open");
  const db = new DatabaseSync(storeFile(kitchen));
  assert.equal(db.prepare("PRAGMA journal_mode").get()?.journal_mode, "wal");
  db.close();
  // foreign keys on: an outcome of an event that does not exist is refused
  assert.throws(
    () => store.recordInstanceOutcome({ eventId: 42, instance: "a", status: "running", startedAt: "t" }),
    (error: unknown) =>
      error instanceof GalleyError && error.code === "STATE_INVALID" && /no event 42/.test(error.message),
  );
  store.close();
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
  store.saveStack("web", { name: "web" });
  const file = storeFile(kitchen);
  assert.equal(modeOf(path.dirname(file)), "700");
  for (const each of [file, `${file}-wal`, `${file}-shm`]) assert.equal(modeOf(each), "600", each);
  store.close();
});

test("an existing world-readable store and its folder are tightened when opened", async () => {
  const kitchen = await tempDir("galley-store-");
  const file = storeFile(kitchen);
  mkdirSync(path.dirname(file), { mode: 0o755 });
  chmodSync(path.dirname(file), 0o755);
  openSqliteStore(file).close();
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
    store.close();
  } finally {
    other.close();
  }
});

test("migrations apply once: reopening applies nothing again", async () => {
  const { file, store } = await fresh();
  store.close();
  const first = versions(file);
  assert.equal(first.length, schemaVersion);
  openSqliteStore(file).close();
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
  store.close();
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

test("stacks and stack-state versions round-trip; versions increase per stack", async () => {
  const { store } = await fresh();
  assert.equal(store.getStack("web"), undefined);
  assert.equal(store.latestState("web"), undefined);
  store.saveStack("web", { name: "web", layers: [{ name: "app" }] });
  store.saveStack("db", { name: "db" });
  const saved = store.saveStack("web", { name: "web", layers: [] });
  assert.deepEqual(saved.content, { name: "web", layers: [] });
  assert.deepEqual(store.getStack("web"), saved);
  assert.deepEqual(
    store.listStacks().map((stack) => stack.name),
    ["db", "web"],
  );

  assert.equal(store.nextStateVersion("web", { n: 1 }), 1);
  assert.equal(store.nextStateVersion("web", { n: 2 }), 2);
  assert.equal(store.nextStateVersion("db", { n: 1 }), 1);
  assert.equal(store.nextStateVersion("web", { n: 3 }), 3);
  const latest = store.latestState("web");
  assert.equal(latest?.version, 3);
  assert.deepEqual(latest?.state, { n: 3 });
  assert.deepEqual(store.latestState("db")?.state, { n: 1 });
  store.close();
});

test("instances round-trip and every status transition is recorded in order", async () => {
  const { store } = await fresh();
  const created = store.upsertInstance({
    stack: "web",
    name: "app1",
    layers: ["app"],
    provider: "container",
  });
  assert.equal(created.status, "stopped");
  assert.equal(created.address, undefined);
  const path: InstanceStatus[] = ["requested", "booting", "running_setup", "online", "stopping", "stopped"];
  for (const to of path) assert.equal(store.setInstanceStatus("web", "app1", to, `to ${to}`)?.to, to);
  // the same status again is not a transition
  assert.equal(store.setInstanceStatus("web", "app1", "stopped", "again"), undefined);
  const updated = store.upsertInstance({
    stack: "web",
    name: "app1",
    layers: ["app", "lb"],
    provider: "container",
    address: "10.0.0.2",
    hostname: "app1",
  });
  assert.deepEqual(store.getInstance("web", "app1"), updated);
  assert.deepEqual(updated.layers, ["app", "lb"]);
  assert.equal(updated.address, "10.0.0.2");
  assert.equal(updated.status, "stopped", "upsert keeps the status");
  store.upsertInstance({ stack: "web", name: "app0", layers: ["app"], provider: "ssh" });
  store.upsertInstance({ stack: "other", name: "x", layers: [], provider: "ssh" });
  assert.deepEqual(
    store.listInstances("web").map((instance) => instance.name),
    ["app0", "app1"],
  );

  const history = store.statusHistory("web", "app1");
  assert.deepEqual(
    history.map((step) => [step.from, step.to, step.reason]),
    [
      [undefined, "stopped", "created"],
      ["stopped", "requested", "to requested"],
      ["requested", "booting", "to booting"],
      ["booting", "running_setup", "to running_setup"],
      ["running_setup", "online", "to online"],
      ["online", "stopping", "to stopping"],
      ["stopping", "stopped", "to stopped"],
    ],
  );
  assert.deepEqual(
    history.map((step) => step.at),
    history.map((step) => step.at).sort(),
  );
  store.close();
});

test("an unknown status or instance is refused and changes nothing", async () => {
  const { store } = await fresh();
  store.upsertInstance({ stack: "web", name: "app1", layers: ["app"], provider: "container" });
  assert.throws(
    () => store.setInstanceStatus("web", "app1", "sleeping" as InstanceStatus, "why"),
    (error: unknown) =>
      error instanceof GalleyError && error.code === "STATE_INVALID" && /sleeping/.test(error.message),
  );
  assert.throws(
    () => store.setInstanceStatus("web", "nope", "online", "why"),
    (error: unknown) => error instanceof GalleyError && /no instance nope in stack web/.test(error.message),
  );
  assert.equal(store.getInstance("web", "app1")?.status, "stopped");
  assert.equal(store.statusHistory("web", "app1").length, 1);
  assert.deepEqual(store.statusHistory("web", "nope"), []);
  store.close();
});

test("events and their per-instance outcomes round-trip", async () => {
  const { store } = await fresh();
  const version = store.nextStateVersion("web", {});
  const first = store.createEvent({ stack: "web", kind: "setup", args: { instance: "app1" } });
  const event = store.createEvent({ stack: "web", kind: "configure", stateVersion: version });
  store.createEvent({ stack: "other", kind: "deploy" });
  assert.ok(event.id > first.id);
  assert.equal(event.status, "queued");
  assert.equal(event.startedAt, undefined);
  assert.deepEqual(event.args, {});
  assert.equal(store.startEvent(event.id).status, "running");
  store.recordInstanceOutcome({ eventId: event.id, instance: "app1", status: "running", startedAt: "t1" });
  const report = { summary: { changed: 2 }, stateVersion: version };
  store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "succeeded",
    stateVersion: version,
    report,
    log: "line 1\nline 2\n",
    startedAt: "t1",
    finishedAt: "t2",
  });
  store.recordInstanceOutcome({
    eventId: event.id,
    instance: "lb1",
    status: "connection_lost",
    startedAt: "t1",
  });
  const finished = store.finishEvent(event.id, "failed");
  assert.equal(finished.status, "failed");
  assert.ok(finished.startedAt !== undefined && finished.finishedAt !== undefined);

  const detail = store.getEvent(event.id);
  assert.equal(detail?.kind, "configure");
  assert.equal(detail?.stateVersion, version);
  assert.deepEqual(detail?.outcomes, [
    {
      eventId: event.id,
      instance: "app1",
      status: "succeeded",
      stateVersion: version,
      report,
      log: "line 1\nline 2\n",
      startedAt: "t1",
      finishedAt: "t2",
    },
    {
      eventId: event.id,
      instance: "lb1",
      status: "connection_lost",
      stateVersion: undefined,
      report: undefined,
      log: "",
      startedAt: "t1",
      finishedAt: undefined,
    },
  ]);
  assert.deepEqual(
    store.listEvents("web").map((e) => [e.id, e.kind]),
    [
      [event.id, "configure"],
      [first.id, "setup"],
    ],
  );
  assert.deepEqual(
    store.listEvents("web", { limit: 1 }).map((e) => e.id),
    [event.id],
  );
  assert.equal(store.getEvent(9999), undefined);
  assert.throws(() => store.startEvent(9999), /no event 9999/);
  assert.throws(() => store.createEvent({ stack: "web", kind: "reboot" as "setup" }), /unknown event kind/);
  store.close();
});

test("a failing write inside a transaction leaves nothing behind", async () => {
  const { store } = await fresh();
  assert.throws(
    () =>
      store.transaction(() => {
        store.saveStack("web", { name: "web" });
        store.nextStateVersion("web", { n: 1 });
        store.upsertInstance({ stack: "web", name: "app1", layers: [], provider: "ssh" });
        store.setInstanceStatus("web", "app1", "bogus" as InstanceStatus, "fails");
      }),
    /unknown instance status/,
  );
  assert.equal(store.getStack("web"), undefined);
  assert.equal(store.latestState("web"), undefined);
  assert.equal(store.getInstance("web", "app1"), undefined);
  assert.deepEqual(store.statusHistory("web", "app1"), []);

  // nested: an inner failure the caller catches undoes only the inner writes
  store.transaction(() => {
    store.saveStack("outer", {});
    assert.throws(() =>
      store.transaction(() => {
        store.saveStack("inner", {});
        throw new Error("inner fails");
      }),
    );
  });
  assert.deepEqual(
    store.listStacks().map((stack) => stack.name),
    ["outer"],
  );
  // the connection is usable afterwards
  assert.equal(store.nextStateVersion("web", {}), 1);
  store.close();
});

test("two connections to one file see each other's committed writes, not uncommitted ones", async () => {
  const { file, store: a } = await fresh();
  const b = openSqliteStore(file);
  a.saveStack("web", { from: "a" });
  assert.deepEqual(b.getStack("web")?.content, { from: "a" });
  const event = b.createEvent({ stack: "web", kind: "deploy" });
  assert.equal(a.getEvent(event.id)?.kind, "deploy");
  a.transaction(() => {
    a.saveStack("web", { from: "a, pending" });
    assert.deepEqual(b.getStack("web")?.content, { from: "a" }, "b reads the last committed version");
  });
  assert.deepEqual(b.getStack("web")?.content, { from: "a, pending" });
  // versions stay increasing across connections
  assert.equal(a.nextStateVersion("web", {}), 1);
  assert.equal(b.nextStateVersion("web", {}), 2);
  assert.equal(a.latestState("web")?.version, 2);
  a.close();
  b.close();
});

test("a registered secret never reaches the database file", async () => {
  const secret = `pw-${randomBytes(12).toString("hex")}`;
  const hex = randomBytes(6).toString("hex");
  const tricky = `${hex}","k`;
  registerSecrets([secret, tricky]);
  const { file, store } = await fresh();
  store.saveStack("web", { attributes: { db: { password: secret } }, [secret]: 1 });
  store.nextStateVersion("web", { note: `password is ${secret}`, list: [secret], tricky });
  // a secret spanning JSON syntax: the stored JSON stays valid and holds no trace of it
  store.nextStateVersion("other", { a: hex, k: 1 });
  store.upsertInstance({ stack: "web", name: "app1", layers: [], provider: "ssh", address: secret });
  store.setInstanceStatus("web", "app1", "online", `logged in with ${secret}`);
  const event = store.createEvent({ stack: "web", kind: "run-recipes", args: { token: secret } });
  store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "failed",
    report: { error: `bad ${secret}` },
    log: `echo ${secret}\n`,
    startedAt: "t",
  });
  assert.deepEqual(store.getStack("web")?.content, {
    attributes: { db: { password: "(sensitive)" } },
    "(sensitive)": 1,
  });
  assert.equal(store.getEvent(event.id)?.outcomes[0]?.log, "echo (sensitive)\n");
  assert.equal(store.latestState("other")?.state, "(sensitive)");
  store.close();
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
  const event = store.createEvent({ stack: "web", kind: "setup" });
  store.startEvent(event.id);
  store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "running",
    bundle: id,
    startedAt: "t1",
  });
  store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "succeeded",
    bundle: id,
    startedAt: "t1",
    finishedAt: "t2",
  });
  store.recordInstanceOutcome({ eventId: event.id, instance: "app2", status: "failed", startedAt: "t1" });
  assert.equal(store.finishEvent(event.id, "failed", id).bundle, id);
  const detail = store.getEvent(event.id)!;
  assert.equal(detail.bundle, id);
  assert.equal(detail.outcomes[0]!.bundle, id);
  // an outcome that never resolved cookbooks records none
  assert.ok(!("bundle" in detail.outcomes[1]!));
  assert.equal(store.listEvents("web")[0]!.bundle, id);
  store.close();
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
  const [event] = store.listEvents("web");
  assert.equal(event!.kind, "setup");
  assert.ok(!("bundle" in event!));
  assert.deepEqual(
    versions(file).map((v) => (v as { version: number }).version),
    [1, 2],
  );
  store.close();
});
