import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync } from "node:fs";
import * as path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { test } from "node:test";
import { promisify } from "node:util";
import { tempDir } from "../resources/testing.ts";
import { secretHash } from "./conformance-server.ts";
import { currentVersion, migrate, migrations } from "./migrations.ts";
import { openSqliteStore, storeFile } from "./sqlite.ts";

// The SQLite side of the feed, users and sessions (schema 6): the conformance suite runs in
// sqlite.test.ts; these are what only this backend has (migrating a file, its retention, its paths).

test("a store of schema 5 gains the feed, users and sessions; its events and tokens are kept", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  mkdirSync(path.dirname(file), { recursive: true });
  const db = new DatabaseSync(file);
  migrate(db, file, migrations.slice(0, 5));
  db.exec(
    `INSERT INTO events (stack, kind, args, status, created_at) VALUES ('web', 'setup', '{}', 'succeeded', 't');
     INSERT INTO event_outcomes (event_id, instance, status, log, started_at) VALUES (1, 'app1', 'succeeded', 'ok', 't');
     INSERT INTO tokens (id, name, grants, hash, created_at) VALUES ('t1', 'ci', '[]', '${secretHash()}', 't')`,
  );
  db.close();
  const store = openSqliteStore(file);
  const check = new DatabaseSync(file, { readOnly: true });
  assert.equal(currentVersion(check), 6);
  check.close();
  assert.equal((await store.getEvent(1))?.outcomes[0]?.log, "ok");
  assert.deepEqual(
    (await store.listInstanceOutcomes("web", "app1")).map((outcome) => outcome.event.kind),
    ["setup"],
  );
  assert.equal(await store.lastFeedId(), 0, "the feed starts empty");
  assert.deepEqual(await store.listUsers(), []);
  await store.createSession({
    hash: secretHash(),
    actor: { kind: "token", tokenId: "t1" },
    csrf: "0123456789abcdef0123",
    expiresAt: "2030-01-01T00:00:00.000Z",
  });
  assert.equal(await store.deleteSessionsOf({ kind: "token", tokenId: "t1" }), 1);
  await store.saveStack("web", {});
  assert.equal((await store.readFeed({}))[0]?.kind, "stack");
  await store.close();
});

test("retention: feed entries older than the window go on append, but the newest N stay", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  const store = openSqliteStore(file, { retention: { every: 1, feedMs: 60 * 60_000, feedKeep: 3 } });
  const old = new Date(Date.now() - 2 * 60 * 60_000).toISOString();
  const entry = (line: string, at?: string) => ({ stack: "web", kind: "log" as const, data: { line }, at });
  // fewer than N: the old ones stay
  await store.appendFeed([entry("a", old), entry("b", old)]);
  await store.appendFeed([entry("c", old)]);
  assert.equal(await store.countFeed({}), 3);
  await store.appendFeed([entry("d")]);
  await store.appendFeed([entry("e")]);
  const lines = async () => (await store.readFeed({})).map((e) => (e.data as { line: string }).line);
  assert.deepEqual(await lines(), ["c", "d", "e"]);
  // the store's own entries prune too; young entries stay beyond N
  await store.saveStack("web", {});
  await store.appendFeed([entry("f")]);
  assert.deepEqual(await lines(), ["d", "e", undefined, "f"]);
  await store.close();
});

test("watchFeed: store objects opened on one file by different spellings of its path hear each other", async () => {
  const kitchen = await tempDir("galley-store-");
  const a = openSqliteStore(storeFile(kitchen));
  const b = openSqliteStore(path.join(kitchen, ".galley", "..", ".galley", "galley.db"));
  const elsewhere = openSqliteStore(storeFile(await tempDir("galley-store-")));
  const heard: string[] = [];
  const stops = [
    a.watchFeed((id) => heard.push(`a ${id}`)),
    b.watchFeed((id) => heard.push(`b ${id}`)),
    elsewhere.watchFeed((id) => heard.push(`elsewhere ${id}`)),
  ];
  try {
    const [entry] = await b.appendFeed([{ stack: "web", kind: "stack", data: {} }]);
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(heard.sort(), [`a ${entry!.id}`, `b ${entry!.id}`]);
  } finally {
    for (const stop of stops) stop();
    await Promise.all([a.close(), b.close(), elsewhere.close()]);
  }
});

test("watchFeed: a listener that throws is reported as a warning; the others still hear", async () => {
  const store = openSqliteStore(storeFile(await tempDir("galley-store-")));
  const warnings: string[] = [];
  const onWarning = (warning: Error) => warnings.push(warning.message);
  process.on("warning", onWarning);
  const heard: number[] = [];
  const stops = [
    store.watchFeed(() => {
      throw new Error("stream closed");
    }),
    store.watchFeed((id) => heard.push(id)),
  ];
  try {
    const [entry] = await store.appendFeed([{ stack: "web", kind: "stack", data: {} }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(heard, [entry!.id]);
    assert.deepEqual(warnings, ["a feed listener failed: stream closed"]);
  } finally {
    for (const stop of stops) stop();
    process.off("warning", onWarning);
    await store.close();
  }
});

test("processes appending at once: ids are unique and commit in order, so a reader polling after its last id misses none", async () => {
  const file = storeFile(await tempDir("galley-store-"));
  const store = openSqliteStore(file);
  await store.saveStack("web", {});
  const sqlite = new URL("./sqlite.ts", import.meta.url).href;
  const writer = (stack: string) =>
    promisify(execFile)(process.execPath, [
      "--input-type=module",
      "--no-warnings",
      "-e",
      `import { openSqliteStore } from ${JSON.stringify(sqlite)};
       const store = openSqliteStore(${JSON.stringify(file)});
       for (let batch = 0; batch < 40; batch += 1) {
         await store.appendFeed(Array.from({ length: 5 }, (_, i) => ({ stack: ${JSON.stringify(stack)}, kind: "log", data: { n: batch * 5 + i } })));
       }
       await store.close();`,
    ]);
  const seen: number[] = [];
  let after = await store.lastFeedId();
  let writing = true;
  const reader = (async () => {
    // as the server polls another process's writes: after the last id seen, until the writers are done
    for (let last = -1; writing || last !== after; ) {
      last = after;
      for (const entry of await store.readFeed({ after, limit: 5000 })) {
        seen.push(entry.id);
        after = entry.id;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  await Promise.all(["p1", "p2", "p3"].map(writer));
  writing = false;
  await reader;
  const all = await store.readFeed({ kinds: ["log"], limit: 5000 });
  assert.equal(all.length, 600);
  assert.deepEqual(
    seen,
    all.map((entry) => entry.id),
    "the reader saw every entry, in order, once",
  );
  for (const stack of ["p1", "p2", "p3"]) {
    const mine = all.filter((entry) => entry.stack === stack).map((entry) => (entry.data as { n: number }).n);
    assert.deepEqual(
      mine,
      Array.from({ length: 200 }, (_, n) => n),
      `${stack}'s entries in its order`,
    );
  }
  await store.close();
});
