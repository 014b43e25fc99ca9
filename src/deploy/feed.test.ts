import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as path from "node:path";
import { processSecrets, Secrets, withSecrets } from "../core/secrets.ts";
import type { HostOutcome } from "../fleet/push.ts";
import { tempDir } from "../resources/testing.ts";
import { openSqliteStore } from "../store/sqlite.ts";
import type { FeedInput } from "../store/store.ts";
import { FeedWriter, outcomeLines, RunFeed, runFeed } from "./feed.ts";

// The feed writer batches and never throws; a run's feed throttles converging phases per host,
// keeps order, and writes resources' names (never diffs or values) when a host ends.

/** A store's appendFeed that records each call's batch (and may fail or be slow). */
function fakeStore(options: { fail?: boolean; delayMs?: number } = {}) {
  const calls: FeedInput[][] = [];
  return {
    calls,
    entries: () => calls.flat(),
    appendFeed: async (entries: readonly FeedInput[]) => {
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (options.fail) throw new Error("database is locked");
      calls.push([...entries]);
      return [];
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("FeedWriter", () => {
  it("writes entries in batches: one appendFeed per ~100 ms, in order, with stack and time", async () => {
    const store = fakeStore();
    const writer = new FeedWriter(store, "web");
    for (let i = 0; i < 30; i++) writer.append({ kind: "log", subject: "event:1", data: { line: `l${i}` } });
    assert.equal(store.calls.length, 0, "nothing written at once");
    await sleep(150);
    assert.equal(store.calls.length, 1);
    assert.deepEqual(
      store.entries().map((e) => (e.data as { line: string }).line),
      Array.from({ length: 30 }, (_, i) => `l${i}`),
    );
    assert.ok(store.entries().every((e) => e.stack === "web" && typeof e.at === "string"));
    await writer.close();
  });

  it("writes a full batch of 500 at once, and keeps order across batches under a slow store", async () => {
    const store = fakeStore({ delayMs: 20 });
    const writer = new FeedWriter(store, "web");
    for (let i = 0; i < 1234; i++) writer.append({ kind: "log", data: { n: i } });
    await sleep(5);
    // two full batches are on their way before the timer
    await writer.flush();
    assert.deepEqual(
      store.calls.map((c) => c.length),
      [500, 500, 234],
    );
    assert.deepEqual(
      store.entries().map((e) => (e.data as { n: number }).n),
      Array.from({ length: 1234 }, (_, i) => i),
    );
  });

  it("close writes what is left at once; later appends are dropped", async () => {
    const store = fakeStore();
    const writer = new FeedWriter(store, "web", { flushMs: 60_000 });
    writer.append({ kind: "log", data: { line: "a" } });
    await writer.close();
    assert.equal(store.entries().length, 1);
    writer.append({ kind: "log", data: { line: "b" } });
    await writer.flush();
    assert.equal(store.entries().length, 1);
  });

  it("never throws into the run: a failed write is logged once", async () => {
    const lines: string[] = [];
    const writer = new FeedWriter(fakeStore({ fail: true }), "web", { log: (l) => lines.push(l) });
    writer.append({ kind: "log", data: { line: "a" } });
    await writer.flush();
    writer.append({ kind: "log", data: { line: "b" } });
    await writer.close();
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /feed of stack web: 1 entries not written: database is locked/);
  });
});

const okOutcome: HostOutcome = {
  status: "failed",
  durationMs: 5,
  report: {
    status: "failed",
    mode: "apply",
    host: "web1",
    runList: ["app"],
    startedAt: "2026-01-01T00:00:00.000Z",
    durationMs: 5,
    summary: { changed: 1, unchanged: 1, failed: 1, skipped: 0, pending: 0, ignored: 0 },
    resources: [
      {
        id: "file[/etc/x]",
        status: "changed",
        actions: ["create"],
        diff: [{ path: "content", before: "s3cret-old", after: "s3cret-new" }] as never,
        durationMs: 1,
      },
      { id: "package[nginx]", status: "unchanged", actions: [], durationMs: 1 },
      {
        id: "service[nginx]",
        status: "failed",
        actions: ["restart"],
        error: { message: "exit 1\nmore detail" },
        durationMs: 1,
      },
    ],
    notifications: { fromPreviousRun: [], kept: [] },
  },
};

describe("RunFeed", () => {
  it("throttles converging phases to 2 a second per host, the last always written, order kept", async () => {
    const store = fakeStore();
    const feed = new RunFeed(new FeedWriter(store, "web"));
    const options = feed.lifecycle({});
    options.onEventStarted?.({ id: 7 } as never);
    options.onPhase?.("configure", "web1", { phase: "connecting" }, 7);
    for (let done = 1; done <= 50; done++) {
      options.onPhase?.(
        "configure",
        "web1",
        { phase: "converging", done, total: 50, changed: 0, failed: 0 },
        7,
      );
      options.onPhase?.(
        "configure",
        "web2",
        { phase: "converging", done, total: 50, changed: 0, failed: 0 },
        7,
      );
      await sleep(10); // 50 phases in ~0.5 s
    }
    options.onPhase?.("configure", "web1", { phase: "done", outcome: okOutcome }, 7);
    await feed.close();
    const entries = store.entries();
    assert.ok(entries.every((e) => e.subject === "event:7"));
    const of = (host: string) =>
      entries.filter((e) => e.kind === "phase" && (e.data as { instance: string }).instance === host);
    const web1 = of("web1").map((e) => e.data as { phase: string; done?: number });
    assert.equal(web1[0]!.phase, "connecting");
    assert.equal(web1.at(-1)!.phase, "done");
    const converging = web1.filter((p) => p.phase === "converging");
    assert.ok(converging.length >= 2 && converging.length <= 4, `${converging.length} converging phases`);
    assert.equal(converging.at(-1)!.done, 50, "the last converging phase is written before done");
    // in order: done counts only go up
    const counts = converging.map((p) => p.done!);
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => a - b),
    );
    // web2 never ended: its last converging phase is written when the run's feed closes
    assert.equal((of("web2").at(-1)!.data as { done: number }).done, 50);
    // after done: a line per changed or failed resource, no diff, no value
    const logs = entries.filter((e) => e.kind === "log").map((e) => (e.data as { line: string }).line);
    assert.deepEqual(logs, ["web1: file[/etc/x] updated (create)", "web1: service[nginx] failed: exit 1"]);
    assert.ok(!JSON.stringify(entries).includes("s3cret"));
  });

  it("a deployment's lines and phases go under deployment:ID (its early lines too), its events' phases under both", async () => {
    const store = fakeStore();
    const feed = new RunFeed(new FeedWriter(store, "web"));
    const printed: string[] = [];
    const request = feed.deployment({ log: (line: string) => printed.push(line) });
    request.log?.("resolving hello");
    request.onCreated?.({ id: 3 } as never);
    request.log?.("batch 1 of 1: web1");
    request.onStep?.({
      deploymentId: 3,
      instance: "web1",
      batch: 0,
      phase: "prepare",
      status: "running",
      startedAt: "2026-01-01T00:00:00.000Z",
    });
    request.onPhase?.("deploy", "web1", { phase: "compiling" }, 11);
    await feed.close();
    assert.deepEqual(printed, ["resolving hello", "batch 1 of 1: web1"], "the CLI still prints");
    assert.deepEqual(
      store.entries().map((e) => [e.kind, e.subject, e.data]),
      [
        ["log", "deployment:3", { line: "resolving hello" }],
        ["log", "deployment:3", { line: "batch 1 of 1: web1" }],
        ["phase", "deployment:3", { instance: "web1", phase: "prepare", status: "running", batch: 0 }],
        ["phase", "event:11", { instance: "web1", phase: "compiling" }],
        ["phase", "deployment:3", { instance: "web1", phase: "compiling" }],
      ],
    );
  });

  it("lifecycle lines go under the one event under way, else the stack", async () => {
    const store = fakeStore();
    const feed = new RunFeed(new FeedWriter(store, "web"));
    const options = feed.lifecycle({});
    options.log?.("provisioning web1");
    options.onEventStarted?.({ id: 4 } as never);
    options.onStatus?.("web1", "online", "setup and deploy done");
    options.onEvent?.({ event: { id: 4 }, results: new Map() } as never);
    options.log?.("done");
    await feed.close();
    assert.deepEqual(
      store.entries().map((e) => [e.subject, (e.data as { line: string }).line]),
      [
        [undefined, "provisioning web1"],
        ["event:4", "web1: online: setup and deploy done"],
        [undefined, "done"],
      ],
    );
  });

  it("outcomeLines: why a host did not run", () => {
    assert.deepEqual(
      outcomeLines("web1", {
        status: "unreachable",
        durationMs: 1,
        error: { code: "HOST_UNREACHABLE", message: "no route" },
      }),
      ["web1: unreachable: HOST_UNREACHABLE: no route"],
    );
    assert.deepEqual(outcomeLines("web1", { status: "skipped", reason: "superseded", durationMs: 0 }), [
      "web1: skipped: superseded",
    ]);
  });
});

describe("a run's feed through its own store", () => {
  it("is scrubbed of the secrets the run decrypted, and names files relative to the kitchen", async () => {
    const dir = await tempDir("galley-feed-");
    const secrets = new Secrets(processSecrets);
    await withSecrets(secrets, async () => {
      // the run's store is opened in the run's secrets scope, as openServedStack opens it
      const store = openSqliteStore(path.join(dir, "galley.db"));
      try {
        secrets.register(["hunter2-s3cret"]);
        const feed = runFeed({ store, kitchen: dir }, "web");
        const options = feed.lifecycle({});
        options.log?.(`curl -u admin:hunter2-s3cret from ${path.join(dir, "stacks", "web.yaml")}`);
        await feed.close();
        const [entry] = await store.readFeed({});
        const line = (entry!.data as { line: string }).line;
        assert.ok(!line.includes("hunter2-s3cret"), line);
        assert.ok(line.endsWith("from stacks/web.yaml"), line);
      } finally {
        await store.close();
      }
    });
  });
});

describe("a real converge's progress", () => {
  it("local hosts through the fleet runner: phases, counts, a line per changed or failed resource, no content", async () => {
    const { makeKitchen, recipe } = await import("../../test/support/kitchen.ts");
    const { runFleet } = await import("../fleet/pipeline.ts");
    const { LocalHost } = await import("../hosts/local.ts");
    const root = await makeKitchen({
      web: {
        recipes: {
          default: recipe(`  r.file(r.attrs.out + "/motd", { content: "top-secret-content\\n" });
  if (r.attrs.fail) r.execute("false", { command: ["false"] });`),
        },
      },
    });
    const homes = new Map<string, string>();
    for (const name of ["a", "b"]) homes.set(name, await tempDir(`galley-feed-${name}-`));
    class HomeHost extends LocalHost {
      override async facts() {
        const facts = await super.facts();
        return { ...facts, user: { ...facts.user, uid: 1000, home: homes.get(this.name)! } };
      }
      async close(): Promise<void> {}
    }
    const store = fakeStore();
    const feed = new RunFeed(new FeedWriter(store, "web"));
    const options = feed.lifecycle({});
    options.onEventStarted?.({ id: 9 } as never);
    await runFleet({
      batches: [
        [...homes].map(([name, home]) => ({
          name,
          target: { name } as never,
          attributes: [
            {
              source: { level: "instance" as const, label: name },
              values: { out: home, fail: name === "b" },
            },
          ],
        })),
      ],
      mode: "apply",
      forks: 2,
      compile: { runList: ["web"], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
      connect: async (target: { name: string }) => new HomeHost(target.name),
      onPhase: (name, phase) => options.onPhase?.("configure", name, phase, 9),
    });
    await feed.close();
    const entries = store.entries();
    assert.ok(entries.every((e) => e.subject === "event:9"));
    const of = (host: string) => entries.filter((e) => (e.data as { instance?: string }).instance === host);
    const phases = of("a")
      .filter((e) => e.kind === "phase")
      .map((e) => (e.data as { phase: string }).phase);
    assert.deepEqual([phases[0], phases[1], phases.at(-1)], ["waiting", "connecting", "done"]);
    assert.ok(phases.includes("converging"), phases.join(", "));
    assert.deepEqual(
      of("a")
        .filter((e) => e.kind === "phase")
        .at(-1)!.data,
      { instance: "a", phase: "done", status: "ok", changed: 1, failed: 0 },
    );
    const lines = entries.filter((e) => e.kind === "log").map((e) => (e.data as { line: string }).line);
    assert.ok(lines.includes(`a: file[${homes.get("a")}/motd] updated (create)`), lines.join("\n"));
    assert.ok(
      lines.some((l) => l.startsWith("b: execute[false] failed")),
      lines.join("\n"),
    );
    assert.ok(!JSON.stringify(entries).includes("top-secret-content"), "no content, no diff");
  });
});
