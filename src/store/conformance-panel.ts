// The feed (what happens in stacks, in order, and who hears of it) as tests: the panel part of the
// conformance suite (storeConformance registers it). Only the Store interface is used.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import type { StoreOpener } from "./conformance.ts";
import type { FeedEntry, FeedInput, FeedKind, FeedQuery, Store } from "./store.ts";

const stateInvalid = (pattern: RegExp) => (error: unknown) =>
  error instanceof GalleyError && error.code === "STATE_INVALID" && pattern.test(error.message);

/** `n` log lines of `subject` in `stack`, numbered from 0. */
export function logLines(stack: string, subject: string, n: number, from = 0): FeedInput[] {
  return Array.from({ length: n }, (_, i) => ({
    stack,
    kind: "log" as const,
    subject,
    data: { line: `line ${from + i}` },
  }));
}

const ids = (entries: FeedEntry[]) => entries.map((entry) => entry.id);
const lines = (entries: FeedEntry[]) => entries.map((entry) => (entry.data as { line: string }).line);

/** A promise of the next id `store`'s watchers hear, and the function that stops listening. */
function nextAnnounced(store: Store): { heard: number[]; stop: () => void } {
  const heard: number[] = [];
  const stop = store.watchFeed((id) => heard.push(id));
  return { heard, stop };
}

/** Lets microtasks and timers run, so every announcement made so far has arrived. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

/** Registers the feed part of the Store conformance tests under `name`. */
export function feedConformance(name: string, opener: StoreOpener): void {
  const it = (title: string, fn: (store: Store) => Promise<void>) =>
    test(`${name} store: feed: ${title}`, async () => {
      const store = await opener.fresh();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  const both = (title: string, fn: (store: Store, other: Store) => Promise<void>) =>
    test(`${name} store: feed: ${title}`, async () => {
      const store = await opener.fresh();
      const other = await opener.again();
      try {
        await fn(store, other);
      } finally {
        await other.close();
        await store.close();
      }
    });

  it("appended entries get increasing ids across stacks, in the order given; read back the same", async (store) => {
    assert.equal(await store.lastFeedId(), 0);
    assert.deepEqual(await store.readFeed({}), []);
    const at = "2026-01-02T03:04:05.000Z";
    const written = await store.appendFeed([
      { stack: "web", kind: "agent", subject: "instance:app1", data: { connected: true } },
      { stack: "db", kind: "log", subject: "event:1", data: { line: "hello" }, at },
      { stack: "web", kind: "stack", data: {} },
    ]);
    assert.equal(written.length, 3);
    assert.ok(written[0]!.id > 0 && written[0]!.id < written[1]!.id && written[1]!.id < written[2]!.id);
    assert.deepEqual(
      written.map(({ stack, kind, subject, data }) => ({ stack, kind, subject, data })),
      [
        { stack: "web", kind: "agent", subject: "instance:app1", data: { connected: true } },
        { stack: "db", kind: "log", subject: "event:1", data: { line: "hello" } },
        { stack: "web", kind: "stack", subject: undefined, data: {} },
      ],
    );
    assert.equal(written[1]!.at, at);
    assert.ok(Date.parse(written[0]!.at) > Date.now() - 60_000, "default time: now");
    assert.deepEqual(await store.readFeed({}), written);
    assert.equal(await store.lastFeedId(), written[2]!.id);
    const more = await store.appendFeed([{ stack: "db", kind: "stack", data: {} }]);
    assert.ok(more[0]!.id > written[2]!.id);
    assert.deepEqual(await store.appendFeed([]), []);
  });

  it("an unknown kind, a bad time or a bad number is refused, and nothing of the call is kept", async (store) => {
    await assert.rejects(
      store.appendFeed([
        { stack: "web", kind: "log", data: { line: "kept?" } },
        { stack: "web", kind: "nonsense" as FeedKind, data: {} },
      ]),
      stateInvalid(/unknown feed kind "nonsense"/),
    );
    assert.deepEqual(await store.readFeed({}), []);
    await assert.rejects(
      store.appendFeed([{ stack: "web", kind: "log", data: {}, at: "soon" }]),
      stateInvalid(/not a time/),
    );
    await assert.rejects(store.appendFeed([{ stack: "", kind: "log", data: {} }]), stateInvalid(/stack ""/));
    await assert.rejects(store.readFeed({ kinds: ["nonsense" as FeedKind] }), stateInvalid(/feed kind/));
    await assert.rejects(store.readFeed({ after: -1 }), stateInvalid(/after -1/));
    await assert.rejects(store.readFeed({ offset: 1.5 }), stateInvalid(/offset 1.5/));
    await assert.rejects(store.readFeed({ limit: Number.NaN }), stateInvalid(/limit/));
    await assert.rejects(store.readFeed({ order: "up" as "asc" }), stateInvalid(/feed order/));
  });

  it("a query narrows by stacks, subject, kinds, after and before; pages by offset and limit in either order", async (store) => {
    const web = await store.appendFeed(logLines("web", "deployment:1", 10));
    const db = await store.appendFeed(logLines("db", "deployment:2", 5));
    const phases = await store.appendFeed([
      { stack: "web", kind: "phase", subject: "deployment:1", data: { instance: "a", phase: "drain" } },
      { stack: "web", kind: "instance", subject: "instance:a", data: { status: "online" } },
    ]);
    const all = [...web, ...db, ...phases];
    assert.deepEqual(await store.readFeed({}), all);
    assert.deepEqual(await store.readFeed({ stacks: ["web"] }), [...web, ...phases]);
    assert.deepEqual(await store.readFeed({ stacks: ["web", "db"] }), all);
    assert.deepEqual(await store.readFeed({ stacks: ["nowhere"] }), []);
    assert.deepEqual(await store.readFeed({ stacks: [] }), [], "an empty list of stacks: none");
    assert.deepEqual(await store.readFeed({ subject: "deployment:2" }), db);
    assert.deepEqual(await store.readFeed({ subject: "deployment:1", kinds: ["phase"] }), [phases[0]]);
    assert.deepEqual(await store.readFeed({ subject: "deployment:1", kinds: ["log", "phase"] }), [
      ...web,
      phases[0],
    ]);
    assert.deepEqual(await store.readFeed({ kinds: ["instance", "phase"] }), phases);
    assert.deepEqual(await store.readFeed({ kinds: [] }), [], "an empty list of kinds: none");
    assert.deepEqual(
      ids(await store.readFeed({ after: web[7]!.id, stacks: ["web"] })),
      ids([web[8]!, web[9]!, ...phases]),
    );
    assert.deepEqual(await store.readFeed({ before: web[2]!.id }), web.slice(0, 2));
    assert.deepEqual(await store.readFeed({ after: web[2]!.id, before: web[5]!.id }), web.slice(3, 5));
    assert.deepEqual(await store.readFeed({ order: "desc", limit: 3 }), all.slice(-3).reverse());
    assert.deepEqual(
      lines(await store.readFeed({ subject: "deployment:1", kinds: ["log"], offset: 4, limit: 3 })),
      ["line 4", "line 5", "line 6"],
    );
    assert.deepEqual(
      lines(
        await store.readFeed({ subject: "deployment:1", kinds: ["log"], offset: 2, limit: 2, order: "desc" }),
      ),
      ["line 7", "line 6"],
    );
    assert.deepEqual(await store.readFeed({ offset: 100 }), []);
    assert.deepEqual(await store.readFeed({ limit: 0 }), []);
    // the stacks of a token's grants with the subject of a page: every field narrows together
    assert.deepEqual(await store.readFeed({ stacks: ["db"], subject: "deployment:1" }), []);
  });

  it("every combination of query fields reads what filtering the whole feed in memory gives", async (store) => {
    // a small deterministic generator: the same entries and queries on every run
    let seed = 42;
    const random = (n: number) => {
      // Park–Miller: exact in doubles, and its values spread over the whole range
      seed = (seed * 16807) % 2147483647;
      return Math.floor((seed / 2147483647) * n);
    };
    const stacks = ["web", "db", "api"];
    const subjects = [undefined, "deployment:1", "deployment:2", "event:3", "instance:a"];
    const kinds = ["log", "phase", "instance", "step"] as const;
    const inputs = Array.from({ length: 300 }, (_, n) => ({
      stack: stacks[random(3)]!,
      kind: kinds[random(4)]!,
      subject: subjects[random(5)],
      data: { n },
    }));
    const all = await store.appendFeed(inputs);
    const first = all[0]!.id;
    let nonEmpty = 0;
    for (let round = 0; round < 200; round += 1) {
      const query: FeedQuery = {};
      if (random(2)) query.stacks = stacks.filter(() => random(2));
      if (random(2)) query.subject = subjects[1 + random(4)];
      if (random(2)) query.kinds = kinds.filter(() => random(2));
      if (random(2)) query.after = first + random(300);
      if (random(3) === 0) query.before = first + random(300);
      if (random(2)) query.offset = random(40);
      if (random(2)) query.limit = random(80);
      if (random(2)) query.order = random(2) ? "desc" : "asc";
      const matching = all.filter(
        (entry) =>
          (query.stacks === undefined || query.stacks.includes(entry.stack)) &&
          (query.subject === undefined || entry.subject === query.subject) &&
          (query.kinds === undefined || query.kinds.includes(entry.kind)) &&
          (query.after === undefined || entry.id > query.after) &&
          (query.before === undefined || entry.id < query.before),
      );
      const ordered = query.order === "desc" ? [...matching].reverse() : matching;
      const offset = query.offset ?? 0;
      const expected = ordered.slice(offset, offset + (query.limit ?? 500));
      const what = JSON.stringify(query);
      assert.deepEqual(ids(await store.readFeed(query)), ids(expected), what);
      assert.equal(await store.countFeed(query), matching.length, what);
      if (expected.length > 0) nonEmpty += 1;
    }
    assert.ok(nonEmpty > 60, `${nonEmpty} of 200 queries read something`);
  });

  it("a read returns 500 entries unless told, and never more than 5000", async (store) => {
    const first = await store.appendFeed(logLines("web", "event:1", 5001));
    assert.equal(first.length, 5001);
    assert.equal((await store.readFeed({})).length, 500);
    assert.equal((await store.readFeed({ limit: 100_000 })).length, 5000);
    const last = await store.readFeed({ limit: 5000, offset: 1 });
    assert.equal(last.at(-1)?.id, first.at(-1)?.id);
  });

  it("countFeed counts what a query matches, whatever its offset and limit", async (store) => {
    await store.appendFeed(logLines("web", "deployment:1", 7));
    await store.appendFeed(logLines("db", "deployment:2", 3));
    const [first] = await store.readFeed({ limit: 1 });
    assert.equal(await store.countFeed({}), 10);
    assert.equal(await store.countFeed({ stacks: ["web"], offset: 5, limit: 1 }), 7);
    assert.equal(await store.countFeed({ stacks: [] }), 0);
    assert.equal(await store.countFeed({ kinds: [] }), 0);
    assert.equal(await store.countFeed({ subject: "deployment:2", kinds: ["log"] }), 3);
    assert.equal(await store.countFeed({ kinds: ["phase"] }), 0);
    assert.equal(await store.countFeed({ after: first!.id }), 9);
    assert.equal(await store.countFeed({ before: first!.id + 2 }), 2);
  });

  it("entries of a transaction that rolls back are neither kept nor announced", async (store) => {
    const { heard, stop } = nextAnnounced(store);
    try {
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.appendFeed(logLines("web", "event:1", 3));
          await tx.saveStack("web", {});
          throw new Error("changed my mind");
        }),
        /changed my mind/,
      );
      await settle();
      assert.deepEqual(await store.readFeed({}), []);
      assert.equal(await store.lastFeedId(), 0);
      assert.deepEqual(heard, []);
    } finally {
      stop();
    }
  });

  it("watchFeed hears the newest id once the outermost transaction commits, not before", async (store) => {
    const { heard, stop } = nextAnnounced(store);
    try {
      const written = await store.appendFeed(logLines("web", "event:1", 3));
      await settle();
      assert.deepEqual(heard, [written[2]!.id]);
      let inside: number[] = [];
      let last = 0;
      await store.transaction(async (tx) => {
        const [entry] = await tx.appendFeed(logLines("web", "event:1", 1));
        // a savepoint inside: its entries wait for the outer commit too
        await tx.transaction(async (inner) => {
          last = (await inner.appendFeed(logLines("web", "event:1", 1)))[0]!.id;
        });
        // an inner failure undoes only its own entries, which are never announced
        await assert.rejects(
          tx.transaction(async (inner) => {
            await inner.appendFeed(logLines("web", "event:1", 2));
            throw new Error("inner");
          }),
          /inner/,
        );
        await settle();
        inside = [...heard];
        assert.ok(entry!.id < last);
      });
      await settle();
      assert.deepEqual(inside, [written[2]!.id], "nothing heard while the transaction is open");
      assert.deepEqual(heard, [written[2]!.id, last]);
      assert.equal(await store.lastFeedId(), last);
    } finally {
      stop();
    }
  });

  it("1000 entries appended in one call are one transaction: heard once, with the last id", async (store) => {
    const { heard, stop } = nextAnnounced(store);
    try {
      const written = await store.appendFeed(logLines("web", "deployment:1", 1000));
      await settle();
      assert.deepEqual(heard, [written[999]!.id]);
      assert.equal(written[999]!.id - written[0]!.id, 999, "consecutive ids");
    } finally {
      stop();
    }
  });

  both(
    "watchFeed hears entries committed through another store object on the same database",
    async (store, other) => {
      const mine = nextAnnounced(store);
      const theirs = nextAnnounced(other);
      try {
        const [a] = await other.appendFeed(logLines("web", "event:1", 1));
        await store.saveStack("web", {});
        const last = await store.lastFeedId();
        await settle();
        assert.deepEqual(mine.heard, [a!.id, last]);
        assert.deepEqual(theirs.heard, [a!.id, last]);
        assert.deepEqual(ids(await other.readFeed({})), [a!.id, last]);
      } finally {
        mine.stop();
        theirs.stop();
      }
      await store.appendFeed(logLines("web", "event:1", 1));
      await settle();
      assert.equal(mine.heard.length, 2, "an unsubscribed listener hears nothing more");
    },
  );

  it("pruneFeed drops entries older than the cutoff but keeps the newest `keep`", async (store) => {
    const old = (n: number) => `2020-01-01T00:00:0${n}.000Z`;
    const written = await store.appendFeed(
      [0, 1, 2, 3, 4].map((n) => ({
        stack: "web",
        kind: "log" as const,
        data: { line: `${n}` },
        at: old(n),
      })),
    );
    const fresh = await store.appendFeed(logLines("web", "event:1", 2));
    assert.equal(await store.pruneFeed("2020-01-01T00:00:02.000Z", 0), 2);
    assert.deepEqual(ids(await store.readFeed({})), ids([...written.slice(2), ...fresh]));
    // keep the newest 4 whatever their age: old entry 2 goes, 3 and 4 stays
    assert.equal(await store.pruneFeed("2030-01-01T00:00:00.000Z", 4), 1);
    assert.equal(await store.pruneFeed("2030-01-01T00:00:00.000Z", 4), 0);
    assert.equal(await store.countFeed({}), 4);
    assert.equal(await store.pruneFeed("2030-01-01T00:00:00.000Z", 0), 4);
    assert.equal(await store.lastFeedId(), 0);
    // ids never go back, even after every entry went
    const [next] = await store.appendFeed(logLines("web", "event:1", 1));
    assert.ok(next!.id > fresh[1]!.id);
  });
}
