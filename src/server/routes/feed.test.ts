import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { describe, it, type TestContext } from "node:test";
import type { FeedEntry, FeedInput } from "../../store/store.ts";
import { mintToken } from "../auth.ts";
import { openSse, type SseEvent, type SseStream, simulatedJob } from "../feed-testing.ts";
import { call, testServer } from "../test-support.ts";

// The feed over the API on the whole server: JSON pages, and server-sent event streams that give
// the backlog then live entries, resume after Last-Event-ID or ?after with no gap and no
// duplicate, show only the stacks a token may view, and end cleanly with the server.

type Server = Awaited<ReturnType<typeof testServer>>;

async function feedServer(t: TestContext, stacks = ["alpha", "beta"]): Promise<Server> {
  const server = await testServer(t, { whole: true });
  await fs.mkdir(path.join(server.kitchen, "stacks"), { recursive: true });
  // the feed routes need the stack's file to exist, not to be valid
  for (const name of stacks)
    await fs.writeFile(path.join(server.kitchen, "stacks", `${name}.yaml`), `name: ${name}\n`);
  return server;
}

const line = (stack: string, n: number, subject = "event:1"): FeedInput => ({
  stack,
  kind: "log",
  subject,
  data: { line: `line ${n}` },
});

const ids = (events: SseEvent[]) => events.map((e) => Number(e.id));
const entriesOf = (events: SseEvent[]) => events.map((e) => JSON.parse(e.data) as FeedEntry);

function streams(t: TestContext): (s: SseStream) => SseStream {
  const open: SseStream[] = [];
  t.after(() => {
    for (const s of open) s.close();
  });
  return (s) => {
    open.push(s);
    return s;
  };
}

describe("the feed's event streams", () => {
  it("gives the backlog in order, then live entries; without after, only new ones", async (t) => {
    const server = await feedServer(t);
    const store = server.ctx.store;
    const keep = streams(t);
    const first = await store.appendFeed([1, 2, 3, 4, 5].map((n) => line("alpha", n)));
    const all = keep(
      await openSse(server, "/v1/stacks/alpha/feed/stream?after=0", { token: server.adminToken }),
    );
    assert.equal(all.status, 200);
    assert.match(String(all.headers["content-type"]), /^text\/event-stream/);
    const newOnly = keep(await openSse(server, "/v1/stacks/alpha/feed/stream", { token: server.adminToken }));
    // an id past the newest (a store made again since): from the newest
    const past = keep(
      await openSse(server, "/v1/stacks/alpha/feed/stream?after=999999", { token: server.adminToken }),
    );
    await all.until((e) => e.length >= 5);
    assert.equal(all.retry, 1000);
    const later = await store.appendFeed([6, 7].map((n) => line("alpha", n)));
    await all.until((e) => e.length >= 7);
    await newOnly.until((e) => e.length >= 2);
    await past.until((e) => e.length >= 2);
    assert.deepEqual(ids(past.events), ids(newOnly.events));
    assert.deepEqual(
      ids(all.events),
      [...first, ...later].map((e) => e.id),
    );
    assert.deepEqual(
      ids(newOnly.events),
      later.map((e) => e.id),
    );
    const entry = entriesOf(all.events)[0]!;
    assert.deepEqual(
      [entry.stack, entry.kind, entry.subject, entry.data, all.events[0]!.event],
      ["alpha", "log", "event:1", { line: "line 1" }, "log"],
    );
  });

  it("resumes after Last-Event-ID or ?after (the larger), and filters by subject and kinds", async (t) => {
    const server = await feedServer(t);
    const store = server.ctx.store;
    const keep = streams(t);
    const written = await store.appendFeed(Array.from({ length: 20 }, (_, n) => line("alpha", n)));
    const at = (i: number) => written[i]!.id;
    const byHeader = keep(
      await openSse(server, "/v1/stacks/alpha/feed/stream", { token: server.adminToken, lastEventId: at(9) }),
    );
    await byHeader.until((e) => e.length >= 10);
    assert.deepEqual(
      ids(byHeader.events),
      written.slice(10).map((e) => e.id),
    );
    const both = keep(
      await openSse(server, `/v1/stacks/alpha/feed/stream?after=${at(4)}`, {
        token: server.adminToken,
        lastEventId: at(14),
      }),
    );
    await both.until((e) => e.length >= 5);
    assert.deepEqual(
      ids(both.events),
      written.slice(15).map((e) => e.id),
    );
    // subject and kinds
    const mixed = await store.appendFeed([
      { stack: "alpha", kind: "phase", subject: "deployment:7", data: { instance: "a1", phase: "facts" } },
      { stack: "alpha", kind: "log", subject: "deployment:7", data: { line: "x" } },
      { stack: "alpha", kind: "log", subject: "deployment:8", data: { line: "y" } },
    ]);
    const filtered = keep(
      await openSse(server, `/v1/stacks/alpha/feed/stream?after=0&subject=deployment:7&kinds=log,step`, {
        token: server.adminToken,
      }),
    );
    await filtered.until((e) => e.length >= 1);
    await store.appendFeed([{ stack: "alpha", kind: "log", subject: "deployment:7", data: { line: "z" } }]);
    await filtered.until((e) => e.length >= 2);
    assert.deepEqual(
      entriesOf(filtered.events).map((e) => (e.data as { line: string }).line),
      ["x", "z"],
    );
    assert.ok(Number(filtered.events[0]!.id) === mixed[1]!.id);
  });

  it("shows only the stacks a token may view; refuses another stack's stream; 404 for no such stack", async (t) => {
    const server = await feedServer(t);
    const store = server.ctx.store;
    const keep = streams(t);
    const alphaViewer = (
      await mintToken(store, { name: "alpha-viewer", grants: [{ stack: "alpha", role: "viewer" }] })
    ).secret;
    const nobody = (await mintToken(store, { name: "nobody", grants: [{ stack: "gamma", role: "viewer" }] }))
      .secret;
    await store.appendFeed([line("alpha", 1), line("beta", 2), line("alpha", 3)]);
    const mine = keep(await openSse(server, "/v1/feed/stream?after=0", { token: alphaViewer }));
    const everything = keep(await openSse(server, "/v1/feed/stream?after=0", { token: server.adminToken }));
    const none = keep(await openSse(server, "/v1/feed/stream?after=0", { token: nobody }));
    await store.appendFeed([line("beta", 4), line("alpha", 5)]);
    await mine.until((e) => e.length >= 3);
    await everything.until((e) => e.length >= 5);
    assert.deepEqual(
      entriesOf(mine.events).map((e) => e.stack),
      ["alpha", "alpha", "alpha"],
    );
    assert.deepEqual(
      entriesOf(everything.events).map((e) => e.stack),
      ["alpha", "beta", "alpha", "beta", "alpha"],
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(none.events.length, 0, "a token for another stack hears nothing");
    assert.equal(mine.events.length, 3, "nothing of beta");
    const refused = await openSse(server, "/v1/stacks/beta/feed/stream?after=0", { token: alphaViewer });
    assert.equal(refused.status, 403);
    assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, "FORBIDDEN");
    const unknown = await openSse(server, "/v1/stacks/nope/feed/stream", { token: server.adminToken });
    assert.equal(unknown.status, 404);
    const anonymous = await openSse(server, "/v1/feed/stream");
    assert.equal(anonymous.status, 401);
    assert.equal((await call(server, "GET", "/v1/stacks/beta/feed", { token: alphaViewer })).status, 403);
  });

  it("opens with a session cookie; refuses bad parameters; at most 20 streams per token", async (t) => {
    const server = await feedServer(t);
    const keep = streams(t);
    const login = await call(server, "POST", "/v1/session", { body: { token: server.adminToken } });
    assert.equal(login.status, 201, login.text);
    const cookie = String(login.headers["set-cookie"]).split(";")[0]!;
    const byCookie = keep(await openSse(server, "/v1/feed/stream?after=0", { headers: { cookie } }));
    assert.equal(byCookie.status, 200);
    await server.ctx.store.appendFeed([line("alpha", 1)]);
    await byCookie.until((e) => e.length >= 1);
    for (const [query, header] of [
      ["kinds=log,nope", undefined],
      ["after=-1", undefined],
      ["after=x", undefined],
      ["subject=a%20b", undefined],
      ["", "abc"],
    ] as const) {
      const bad = await openSse(server, `/v1/stacks/alpha/feed/stream?${query}`, {
        token: server.adminToken,
        ...(header ? { lastEventId: header } : {}),
      });
      assert.equal(bad.status, 400, `${query} ${header}: ${bad.text}`);
    }
    // the cookie's session is the admin token's actor: one stream is open already
    const open: SseStream[] = [];
    for (let i = 0; i < 19; i++)
      open.push(keep(await openSse(server, "/v1/feed/stream", { token: server.adminToken })));
    assert.ok(open.every((s) => s.status === 200));
    const over = await openSse(server, "/v1/feed/stream", { token: server.adminToken });
    assert.equal(over.status, 429, over.text);
    assert.equal((JSON.parse(over.text) as { error: { code: string } }).error.code, "STREAMS_LIMIT");
    // another token is not counted against it
    const other = (
      await mintToken(server.ctx.store, { name: "other", grants: [{ stack: "*", role: "viewer" }] })
    ).secret;
    assert.equal(keep(await openSse(server, "/v1/feed/stream", { token: other })).status, 200);
    // opened all at once, still 20 at most
    const rush = (
      await mintToken(server.ctx.store, { name: "rush", grants: [{ stack: "alpha", role: "viewer" }] })
    ).secret;
    const rushed = await Promise.all(
      Array.from({ length: 25 }, () => openSse(server, "/v1/stacks/alpha/feed/stream", { token: rush })),
    );
    for (const s of rushed) keep(s);
    assert.deepEqual(
      [rushed.filter((s) => s.status === 200).length, rushed.filter((s) => s.status === 429).length],
      [20, 5],
    );
    // a closed stream frees its place
    open[0]!.close();
    await waitFor(
      async () => (await openSse(server, "/v1/feed/stream", { token: server.adminToken })).status !== 429,
    );
  });

  it("sees another process's entries (polling); ends open streams when the server closes", async (t) => {
    const server = await feedServer(t);
    const stream = await openSse(server, "/v1/stacks/alpha/feed/stream", { token: server.adminToken });
    const script = `
      const { openSqliteStore, storeFile } = await import(${JSON.stringify(path.resolve("src/store/sqlite.ts"))});
      const store = openSqliteStore(storeFile(${JSON.stringify(server.kitchen)}));
      await store.appendFeed([{ stack: "alpha", kind: "log", data: { line: "from a CLI" } }]);
      await store.close();`;
    await new Promise<void>((resolve, reject) =>
      execFile(process.execPath, ["--input-type=module", "-e", script], (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    const started = Date.now();
    await stream.until((e) => e.length >= 1, 3000);
    assert.ok(Date.now() - started < 1500, "seen within a poll or two");
    assert.equal((entriesOf(stream.events)[0]!.data as { line: string }).line, "from a CLI");
    const closing = Date.now();
    await server.close();
    await stream.ended;
    assert.ok(Date.now() - closing < 5000, "the server closed without waiting for its streams");
  });

  it("sends a keepalive comment when idle (every 15 s; shortened here)", async (t) => {
    const { feedTimings } = await import("../feed-stream.ts");
    assert.equal(feedTimings.keepaliveMs, 15_000);
    feedTimings.keepaliveMs = 200;
    t.after(() => {
      feedTimings.keepaliveMs = 15_000;
    });
    const server = await feedServer(t);
    const stream = streams(t)(await openSse(server, "/v1/feed/stream", { token: server.adminToken }));
    await waitFor(async () => stream.comments.filter((c) => c === "keepalive").length >= 2, 3000);
    // still live after the keepalives
    await server.ctx.store.appendFeed([line("alpha", 1)]);
    await stream.until((e) => e.length >= 1);
    // a revoked token's stream ends at its next keepalive; so does a logged-out session's
    const { record, secret } = await mintToken(server.ctx.store, {
      name: "short",
      grants: [{ stack: "alpha", role: "viewer" }],
    });
    const revoked = streams(t)(await openSse(server, "/v1/stacks/alpha/feed/stream", { token: secret }));
    const login = await call(server, "POST", "/v1/session", { body: { token: server.adminToken } });
    const cookie = String(login.headers["set-cookie"]).split(";")[0]!;
    const csrf = (login.json as { csrf: string }).csrf;
    const session = streams(t)(await openSse(server, "/v1/feed/stream", { headers: { cookie } }));
    await server.ctx.store.revokeToken(record.id);
    const out = await call(server, "DELETE", "/v1/session", { headers: { cookie, "x-galley-csrf": csrf } });
    assert.equal(out.status, 200, out.text);
    const ended = (s: SseStream) => Promise.race([s.ended.then(() => true), sleep(3000).then(() => false)]);
    assert.equal(await ended(revoked), true, "the revoked token's stream ended");
    assert.equal(await ended(session), true, "the ended session's stream ended");
    assert.equal(await ended(stream), false, "the admin token's stream goes on");
    // a busy stream (never idle) is checked as often
    const busy = await mintToken(server.ctx.store, {
      name: "busy",
      grants: [{ stack: "alpha", role: "viewer" }],
    });
    const busyStream = streams(t)(
      await openSse(server, "/v1/stacks/alpha/feed/stream", { token: busy.secret }),
    );
    let writing = true;
    const writer = (async () => {
      for (let n = 0; writing; n++) {
        await server.ctx.store.appendFeed([line("alpha", n)]);
        await sleep(30);
      }
    })();
    await busyStream.until((e) => e.length >= 5);
    await server.ctx.store.revokeToken(busy.record.id);
    assert.equal(await ended(busyStream), true, "the revoked token's busy stream ended");
    writing = false;
    await writer;
  });
});

describe("the feed as JSON", () => {
  it("pages by offset with total; after, before, order, kinds, subject; last is the newest id", async (t) => {
    const server = await feedServer(t);
    const store = server.ctx.store;
    const written = await store.appendFeed(
      Array.from({ length: 25 }, (_, n) => line("alpha", n, "deployment:3")),
    );
    await store.appendFeed([line("beta", 99)]);
    const newest = await store.lastFeedId();
    const get = async (query: string) => {
      const reply = await call(server, "GET", `/v1/stacks/alpha/feed?${query}`, { token: server.adminToken });
      assert.equal(reply.status, 200, reply.text);
      return reply.json as { entries: FeedEntry[]; last: number; total?: number };
    };
    const page = await get("subject=deployment:3&kinds=log&offset=10&limit=10&total=1");
    assert.deepEqual(
      page.entries.map((e) => e.id),
      written.slice(10, 20).map((e) => e.id),
    );
    assert.equal(page.total, 25);
    assert.equal(page.last, newest);
    const tail = await get("limit=1&order=desc");
    assert.deepEqual([tail.entries.map((e) => e.id), tail.total], [[written[24]!.id], undefined]);
    const between = await get(`after=${written[2]!.id}&before=${written[6]!.id}`);
    assert.deepEqual(
      between.entries.map((e) => e.id),
      written.slice(3, 6).map((e) => e.id),
    );
    assert.equal((await get("kinds=phase")).entries.length, 0);
    for (const bad of ["limit=0", "limit=5001", "offset=-1", "order=up", "kinds=", "total=yes"]) {
      const reply = await call(server, "GET", `/v1/stacks/alpha/feed?${bad}`, { token: server.adminToken });
      assert.equal(reply.status, 400, `${bad}: ${reply.text}`);
    }
    assert.equal(
      (await call(server, "GET", "/v1/stacks/nope/feed", { token: server.adminToken })).status,
      404,
    );
  });
});

describe("a simulated 200-instance, 20-minute job", () => {
  it("loses no line and repeats none across 10+ reconnects at random points (3 clients at once)", {
    timeout: 120_000,
  }, async (t) => {
    const server = await feedServer(t);
    const store = server.ctx.store;
    const { readers, written } = await simulatedJob(server, {
      instances: 200,
      linesPerInstance: 60,
      pauseMs: 200,
      readers: 3,
    });
    for (const [n, { received, reconnects, whileWriting }] of readers.entries()) {
      t.diagnostic(
        `reader ${n + 1} (${n % 2 === 0 ? "Last-Event-ID" : "?after"}): ${received.length} of ${written.length} entries, ${reconnects} reconnects (${whileWriting} while writing)`,
      );
      assert.ok(whileWriting >= 10, `${whileWriting} reconnects while the job wrote`);
      assert.equal(received.length, written.length, "every entry once");
      assert.deepEqual(received, written, "in order, no gap, no duplicate");
    }
    assert.equal(await store.countFeed({ stacks: ["alpha"] }), written.length);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 100));
  }
}
