// What the store writes to the feed by itself when its state changes, as tests: part of the
// conformance suite (storeConformance registers it). Only the Store interface is used.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { StoreOpener } from "./conformance.ts";
import { deploymentInput } from "./conformance-deployments.ts";
import { agentRun, secretHash } from "./conformance-server.ts";
import type { Store } from "./store.ts";

type Written = { stack: string; kind: string; subject?: string | undefined; data: unknown };

/** The entries `fn` made the store write, without ids and times. */
async function writtenBy(store: Store, fn: () => Promise<unknown>): Promise<Written[]> {
  const after = await store.lastFeedId();
  await fn().catch(() => undefined);
  return (await store.readFeed({ after })).map(({ stack, kind, subject, data }) => ({
    stack,
    kind,
    subject,
    data,
  }));
}

/** Registers the store-side feed emission part of the Store conformance tests under `name`. */
export function emissionConformance(name: string, opener: StoreOpener): void {
  const it = (title: string, fn: (store: Store) => Promise<void>) =>
    test(`${name} store: feed emission: ${title}`, async () => {
      const store = await opener.fresh();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  it("saving a stack and a new state version", async (store) => {
    assert.deepEqual(await writtenBy(store, () => store.saveStack("web", { name: "web" })), [
      { stack: "web", kind: "stack", subject: undefined, data: {} },
    ]);
    assert.deepEqual(await writtenBy(store, () => store.nextStateVersion("web", { big: "state" })), [
      { stack: "web", kind: "state", subject: undefined, data: { version: 1 } },
    ]);
  });

  it("instances: created, moved, out of service, weighted, readdressed; nothing when nothing changed", async (store) => {
    const upsert = (address?: string, layers = ["app"]) =>
      store.upsertInstance({ stack: "web", name: "app1", layers, provider: "ssh", address });
    const entry = (data: unknown) => ({ stack: "web", kind: "instance", subject: "instance:app1", data });
    assert.deepEqual(await writtenBy(store, () => upsert("10.0.0.1")), [
      entry({ status: "stopped", reason: "created", address: "10.0.0.1" }),
    ]);
    assert.deepEqual(await writtenBy(store, () => upsert("10.0.0.1", ["app", "db"])), []);
    assert.deepEqual(await writtenBy(store, () => upsert("10.0.0.2")), [entry({ address: "10.0.0.2" })]);
    assert.deepEqual(await writtenBy(store, () => upsert(undefined)), [entry({})], "the address went");
    assert.deepEqual(
      await writtenBy(store, () => store.setInstanceStatus("web", "app1", "booting", "started")),
      [entry({ status: "booting", reason: "started" })],
    );
    assert.deepEqual(
      await writtenBy(store, () => store.setInstanceStatus("web", "app1", "booting", "again")),
      [],
    );
    assert.deepEqual(await writtenBy(store, () => store.setInstanceService("web", "app1", false)), [
      entry({ inService: false }),
    ]);
    assert.deepEqual(await writtenBy(store, () => store.setInstanceService("web", "app1", false)), []);
    assert.deepEqual(await writtenBy(store, () => store.setInstanceWeight("web", "app1", 50)), [
      entry({ weight: 50 }),
    ]);
    assert.deepEqual(await writtenBy(store, () => store.setInstanceWeight("web", "app1", 50)), []);
    // refused: nothing written
    assert.deepEqual(await writtenBy(store, () => store.setInstanceWeight("web", "app1", 999)), []);
    assert.deepEqual(await writtenBy(store, () => store.setInstanceStatus("web", "nope", "online", "x")), []);
    assert.deepEqual(await writtenBy(store, () => store.setInstanceService("web", "nope", true)), []);
  });

  it("events: created, started, finished; each instance's outcome without report or log", async (store) => {
    let id = 0;
    const created = await writtenBy(store, async () => {
      id = (await store.createEvent({ stack: "web", kind: "deploy", args: { app: "x" }, stateVersion: 3 }))
        .id;
    });
    const entry = (data: unknown, kind = "event") => ({ stack: "web", kind, subject: `event:${id}`, data });
    assert.deepEqual(created, [entry({ id, kind: "deploy", status: "queued", stateVersion: 3 })]);
    assert.deepEqual(await writtenBy(store, () => store.startEvent(id)), [
      entry({ id, kind: "deploy", status: "running", stateVersion: 3 }),
    ]);
    const outcome = {
      eventId: id,
      instance: "app1",
      status: "succeeded" as const,
      report: { resources: [{ a: 1 }] },
      log: "a long log\n",
      startedAt: "2030-01-01T00:00:00.000Z",
      finishedAt: "2030-01-01T00:01:00.000Z",
    };
    assert.deepEqual(await writtenBy(store, () => store.recordInstanceOutcome(outcome)), [
      entry(
        {
          instance: "app1",
          status: "succeeded",
          startedAt: "2030-01-01T00:00:00.000Z",
          finishedAt: "2030-01-01T00:01:00.000Z",
        },
        "outcome",
      ),
    ]);
    assert.deepEqual(await writtenBy(store, () => store.finishEvent(id, "succeeded", "b".repeat(64))), [
      entry({ id, kind: "deploy", status: "succeeded", stateVersion: 3, bundle: "b".repeat(64) }),
    ]);
    assert.deepEqual(await writtenBy(store, () => store.startEvent(9999)), []);
    assert.deepEqual(
      await writtenBy(store, () => store.recordInstanceOutcome({ ...outcome, eventId: 9999 })),
      [],
    );
  });

  it("deployments: every status change, and each step without its log; nothing else of theirs", async (store) => {
    const first = await store.createDeployment(deploymentInput({ migration: "pending" }));
    const { id } = first;
    const entry = (data: unknown, kind = "deployment") => ({
      stack: "web",
      kind,
      subject: `deployment:${id}`,
      data,
    });
    const record = (status: string) => ({
      id,
      app: "hello",
      status,
      strategy: "rolling",
      revision: first.revision,
      requested: "main",
    });
    assert.deepEqual((await store.readFeed({}))[0]?.data, record("pending"), "created: pending");
    assert.deepEqual(await writtenBy(store, () => store.startDeployment(id)), [entry(record("running"))]);
    assert.deepEqual(await writtenBy(store, () => store.setDeploymentBundle(id, "c".repeat(64))), []);
    assert.deepEqual(await writtenBy(store, () => store.claimMigration(id, "app1")), []);
    assert.deepEqual(await writtenBy(store, () => store.finishMigration(id, "done")), []);
    const step = {
      deploymentId: id,
      instance: "app1",
      batch: 1,
      phase: "switch",
      status: "succeeded" as const,
      release: String(id),
      log: "switched\n",
      startedAt: "2030-01-01T00:00:00.000Z",
      finishedAt: "2030-01-01T00:00:02.000Z",
    };
    assert.deepEqual(await writtenBy(store, () => store.recordDeploymentStep(step)), [
      entry(
        {
          instance: "app1",
          batch: 1,
          phase: "switch",
          status: "succeeded",
          release: String(id),
          startedAt: step.startedAt,
          finishedAt: step.finishedAt,
        },
        "step",
      ),
    ]);
    assert.deepEqual(await writtenBy(store, () => store.finishDeployment(id, "succeeded")), [
      entry(record("succeeded")),
    ]);
    // refused (ended): nothing written
    assert.deepEqual(await writtenBy(store, () => store.startDeployment(id)), []);
    let rollback = 0;
    const created = await writtenBy(store, async () => {
      rollback = (await store.createDeployment(deploymentInput({ rollbackOf: id }))).id;
    });
    assert.deepEqual(created[0]?.data, { ...record("pending"), id: rollback, rollbackOf: id });
    assert.equal(created[0]?.subject, `deployment:${rollback}`);
    assert.deepEqual(await writtenBy(store, () => store.finishDeployment(rollback, "interrupted")), [
      {
        ...entry({ ...record("interrupted"), id: rollback, rollbackOf: id }),
        subject: `deployment:${rollback}`,
      },
    ]);
  });

  it("agent runs: a recorded run, not a duplicate; the server's other records write nothing", async (store) => {
    const run = agentRun({ seq: 4, changed: 2, report: { big: "report" } });
    assert.deepEqual(await writtenBy(store, () => store.recordAgentRun(run)), [
      {
        stack: "web",
        kind: "run",
        subject: "instance:app1",
        data: {
          seq: 4,
          generation: 1,
          kind: "drift",
          mode: "enforce",
          status: "ok",
          changed: 2,
          failed: 0,
          finishedAt: run.finishedAt,
        },
      },
    ]);
    assert.deepEqual(await writtenBy(store, () => store.recordAgentRun(run)), [], "a duplicate");
    const quiet = await writtenBy(store, async () => {
      await store.createToken({ name: "ci", grants: [], hash: secretHash() });
      await store.registerAgent({ stack: "web", instance: "app1", publicKey: "k" });
      await store.agentSeen("web", "app1", "2030-01-01T00:00:00.000Z");
      await store.recordMetrics({
        stack: "web",
        instance: "app1",
        at: new Date().toISOString(),
        cpu: 1,
        memory: 2,
        load: 0.5,
      });
      await store.appendAudit({ actor: "token:ci", action: "deploy", outcome: "ok" });
      await store.acquireLease("scheduler", "me", 1000);
    });
    assert.deepEqual(quiet, []);
    assert.equal((await store.listAudit()).length, 1, "every call above ran");
  });

  it("a transaction's changes write their entries in order when it commits, none when it rolls back", async (store) => {
    await store.upsertInstance({ stack: "web", name: "app1", layers: [], provider: "ssh" });
    const heard: number[] = [];
    const stop = store.watchFeed((id) => heard.push(id));
    try {
      const rolledBack = await writtenBy(store, () =>
        store.transaction(async (tx) => {
          await tx.saveStack("web", {});
          await tx.setInstanceStatus("web", "app1", "online", "up");
          await tx.createEvent({ stack: "web", kind: "setup" });
          throw new Error("no");
        }),
      );
      assert.deepEqual(rolledBack, []);
      assert.equal((await store.getInstance("web", "app1"))?.status, "stopped");
      const committed = await writtenBy(store, () =>
        store.transaction(async (tx) => {
          await tx.setInstanceStatus("web", "app1", "online", "up");
          await tx.nextStateVersion("web", {});
        }),
      );
      assert.deepEqual(
        committed.map((entry) => entry.kind),
        ["instance", "state"],
      );
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(
        heard,
        [await store.lastFeedId()],
        "one announcement, of the last id, after the commit",
      );
    } finally {
      stop();
    }
  });
}
