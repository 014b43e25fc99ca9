// The Store contract as tests: every backend runs them (SQLite in sqlite.test.ts; a PostgreSQL store
// would call storeConformance with its own opener). They use only the Store interface.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import { processSecrets, registerSecrets, Secrets } from "../core/secrets.ts";
import { deploymentConformance, deploymentInput } from "./conformance-deployments.ts";
import { emissionConformance } from "./conformance-emission.ts";
import { feedConformance } from "./conformance-panel.ts";
import { agentRun, secretHash, serverConformance } from "./conformance-server.ts";
import { usersConformance } from "./conformance-users.ts";
import type { InstanceStatus, Store } from "./store.ts";

/** How the suite reaches a backend: a fresh, empty store, and a second connection to the same one. */
export interface StoreOpener {
  /** a new empty store (its own database), scrubbing the secrets of `secrets` (default: the process registry) */
  fresh(secrets?: Secrets): Promise<Store>;
  /** another connection to the store `fresh` returned last, as a second process would open it */
  again(): Promise<Store>;
}

const stateInvalid = (pattern: RegExp) => (error: unknown) =>
  error instanceof GalleyError && error.code === "STATE_INVALID" && pattern.test(error.message);

/**
 * Registers the Store conformance tests under `name`.
 *
 * @example storeConformance("sqlite", { fresh: async () => openSqliteStore(file()), again: … });
 */
export function storeConformance(name: string, opener: StoreOpener): void {
  const it = (title: string, fn: (store: Store) => Promise<void>) =>
    test(`${name} store: ${title}`, async () => {
      const store = await opener.fresh();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  it("every method returns a promise; a refused call rejects, it does not throw", async (store) => {
    const saved = store.saveStack("web", {});
    assert.ok(saved instanceof Promise);
    await saved;
    let threw = false;
    let result: Promise<unknown> | undefined;
    try {
      result = store.startEvent(9999);
    } catch {
      threw = true;
    }
    assert.equal(threw, false);
    await assert.rejects(result!, stateInvalid(/no event 9999/));
  });

  it("stacks and stack-state versions round-trip; versions increase per stack", async (store) => {
    assert.equal(await store.getStack("web"), undefined);
    assert.equal(await store.latestState("web"), undefined);
    await store.saveStack("web", { name: "web", layers: [{ name: "app" }] });
    await store.saveStack("db", { name: "db" });
    const saved = await store.saveStack("web", { name: "web", layers: [] });
    assert.deepEqual(saved.content, { name: "web", layers: [] });
    assert.deepEqual(await store.getStack("web"), saved);
    assert.deepEqual(
      (await store.listStacks()).map((stack) => stack.name),
      ["db", "web"],
    );
    assert.equal(await store.nextStateVersion("web", { n: 1 }), 1);
    assert.equal(await store.nextStateVersion("web", { n: 2 }), 2);
    assert.equal(await store.nextStateVersion("db", { n: 1 }), 1);
    assert.equal(await store.nextStateVersion("web", { n: 3 }), 3);
    const latest = await store.latestState("web");
    assert.equal(latest?.version, 3);
    assert.deepEqual(latest?.state, { n: 3 });
    assert.deepEqual((await store.latestState("db"))?.state, { n: 1 });
  });

  it("instances round-trip and every status transition is recorded in order", async (store) => {
    const created = await store.upsertInstance({
      stack: "web",
      name: "app1",
      layers: ["app"],
      provider: "container",
    });
    assert.equal(created.status, "stopped");
    assert.equal(created.address, undefined);
    const steps: InstanceStatus[] = [
      "requested",
      "booting",
      "running_setup",
      "online",
      "stopping",
      "stopped",
    ];
    for (const to of steps)
      assert.equal((await store.setInstanceStatus("web", "app1", to, `to ${to}`))?.to, to);
    // the same status again is not a transition
    assert.equal(await store.setInstanceStatus("web", "app1", "stopped", "again"), undefined);
    const updated = await store.upsertInstance({
      stack: "web",
      name: "app1",
      layers: ["app", "lb"],
      provider: "container",
      address: "10.0.0.2",
      hostname: "app1",
    });
    assert.deepEqual(await store.getInstance("web", "app1"), updated);
    assert.deepEqual(updated.layers, ["app", "lb"]);
    assert.equal(updated.address, "10.0.0.2");
    assert.equal(updated.status, "stopped", "upsert keeps the status");
    await store.upsertInstance({ stack: "web", name: "app0", layers: ["app"], provider: "ssh" });
    await store.upsertInstance({ stack: "other", name: "x", layers: [], provider: "ssh" });
    assert.deepEqual(
      (await store.listInstances("web")).map((instance) => instance.name),
      ["app0", "app1"],
    );
    const history = await store.statusHistory("web", "app1");
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
  });

  it("an unknown status or instance is refused and changes nothing", async (store) => {
    await store.upsertInstance({ stack: "web", name: "app1", layers: ["app"], provider: "container" });
    await assert.rejects(
      store.setInstanceStatus("web", "app1", "sleeping" as InstanceStatus, "why"),
      stateInvalid(/sleeping/),
    );
    await assert.rejects(
      store.setInstanceStatus("web", "nope", "online", "why"),
      stateInvalid(/no instance nope in stack web/),
    );
    assert.equal((await store.getInstance("web", "app1"))?.status, "stopped");
    assert.equal((await store.statusHistory("web", "app1")).length, 1);
    assert.deepEqual(await store.statusHistory("web", "nope"), []);
  });

  it("events and their per-instance outcomes round-trip", async (store) => {
    const version = await store.nextStateVersion("web", {});
    const first = await store.createEvent({ stack: "web", kind: "setup", args: { instance: "app1" } });
    const event = await store.createEvent({ stack: "web", kind: "configure", stateVersion: version });
    await store.createEvent({ stack: "other", kind: "deploy" });
    assert.ok(event.id > first.id);
    assert.equal(event.status, "queued");
    assert.equal(event.startedAt, undefined);
    assert.deepEqual(event.args, {});
    assert.equal((await store.startEvent(event.id)).status, "running");
    await store.recordInstanceOutcome({
      eventId: event.id,
      instance: "app1",
      status: "running",
      startedAt: "t1",
    });
    const report = { summary: { changed: 2 }, stateVersion: version };
    await store.recordInstanceOutcome({
      eventId: event.id,
      instance: "app1",
      status: "succeeded",
      stateVersion: version,
      report,
      log: "line 1\nline 2\n",
      startedAt: "t1",
      finishedAt: "t2",
    });
    await store.recordInstanceOutcome({
      eventId: event.id,
      instance: "lb1",
      status: "connection_lost",
      startedAt: "t1",
    });
    const finished = await store.finishEvent(event.id, "failed");
    assert.equal(finished.status, "failed");
    assert.ok(finished.startedAt !== undefined && finished.finishedAt !== undefined);
    const detail = await store.getEvent(event.id);
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
      (await store.listEvents("web")).map((e) => [e.id, e.kind]),
      [
        [event.id, "configure"],
        [first.id, "setup"],
      ],
    );
    assert.deepEqual(
      (await store.listEvents("web", { limit: 1 })).map((e) => e.id),
      [event.id],
    );
    assert.equal(await store.getEvent(9999), undefined);
    await assert.rejects(store.startEvent(9999), stateInvalid(/no event 9999/));
    await assert.rejects(
      store.recordInstanceOutcome({ eventId: 9999, instance: "a", status: "running", startedAt: "t" }),
      stateInvalid(/no event 9999/),
    );
    await assert.rejects(
      store.createEvent({ stack: "web", kind: "reboot" as "setup" }),
      /unknown event kind/,
    );
  });

  it("a failing write inside a transaction leaves nothing behind; a caught nested failure undoes only its own", async (store) => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.saveStack("web", { name: "web" });
        await tx.nextStateVersion("web", { n: 1 });
        await tx.upsertInstance({ stack: "web", name: "app1", layers: [], provider: "ssh" });
        await tx.setInstanceStatus("web", "app1", "bogus" as InstanceStatus, "fails");
      }),
      /unknown instance status/,
    );
    assert.equal(await store.getStack("web"), undefined);
    assert.equal(await store.latestState("web"), undefined);
    assert.equal(await store.getInstance("web", "app1"), undefined);
    assert.deepEqual(await store.statusHistory("web", "app1"), []);
    const value = await store.transaction(async (tx) => {
      await tx.saveStack("outer", {});
      await assert.rejects(
        tx.transaction(async (inner) => {
          await inner.saveStack("inner", {});
          throw new Error("inner fails");
        }),
        /inner fails/,
      );
      return 7;
    });
    assert.equal(value, 7);
    assert.deepEqual(
      (await store.listStacks()).map((stack) => stack.name),
      ["outer"],
    );
    assert.equal(await store.nextStateVersion("web", {}), 1, "the store is usable afterwards");
  });

  it("a call from outside an open transaction waits for it and never lands inside it", async (store) => {
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const failing = store.transaction(async (tx) => {
      await tx.saveStack("in-tx", {});
      entered();
      await held;
      throw new Error("rolled back");
    });
    await inside;
    // started while the transaction is open: it must neither see nor be undone with its writes
    const outside = store.saveStack("outside", {}).then(() => store.getStack("in-tx"));
    const order: string[] = [];
    void outside.then(() => order.push("outside"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    order.push("released");
    release();
    await assert.rejects(failing, /rolled back/);
    assert.equal(await outside, undefined, "the outside call ran after the rollback");
    assert.deepEqual(order, ["released", "outside"]);
    assert.deepEqual(
      (await store.listStacks()).map((stack) => stack.name),
      ["outside"],
    );
  });

  it("a transaction's view refuses use after the transaction ended", async (store) => {
    let leaked: Store | undefined;
    await store.transaction(async (tx) => {
      leaked = tx;
    });
    await assert.rejects(leaked!.saveStack("late", {}), stateInvalid(/outside the transaction/));
    assert.equal(await store.getStack("late"), undefined);
  });

  it("two connections see each other's committed writes, not uncommitted ones", async (a) => {
    const b = await opener.again();
    try {
      await a.saveStack("web", { from: "a" });
      assert.deepEqual((await b.getStack("web"))?.content, { from: "a" });
      const event = await b.createEvent({ stack: "web", kind: "deploy" });
      assert.equal((await a.getEvent(event.id))?.kind, "deploy");
      await a.transaction(async (tx) => {
        await tx.saveStack("web", { from: "a, pending" });
        assert.deepEqual((await b.getStack("web"))?.content, { from: "a" }, "b reads the last commit");
      });
      assert.deepEqual((await b.getStack("web"))?.content, { from: "a, pending" });
      assert.equal(await a.nextStateVersion("web", {}), 1);
      assert.equal(await b.nextStateVersion("web", {}), 2);
      assert.equal((await a.latestState("web"))?.version, 2);
    } finally {
      await b.close();
    }
  });

  it("registered secrets are scrubbed from everything it keeps", async (store) => {
    const { secret, tricky, eventId, deploymentId } = await storeSecretsEverywhere(store);
    const everything = JSON.stringify([
      await store.getStack("web"),
      await store.latestState("web"),
      await store.listInstances("web"),
      await store.statusHistory("web", "app1"),
      await store.getEvent(eventId),
      await store.getDeployment(deploymentId),
      await store.listDeployments("web"),
      await store.listAudit(),
      await store.listAgentRuns("web", "app1"),
      await store.listTokens(),
      await store.readFeed({ limit: 5000 }),
    ]);
    assert.ok(!everything.includes(secret) && !everything.includes(tricky), everything);
  });

  deploymentConformance(name, opener);
  serverConformance(name, opener);
  feedConformance(name, opener);
  emissionConformance(name, opener);
  usersConformance(name, opener);

  test(`${name} store: a store owned by a run scrubs the run's secrets and the process's, not another run's`, async () => {
    const run = new Secrets(processSecrets);
    const other = new Secrets(processSecrets);
    const mine = `run-${randomBytes(9).toString("hex")}`;
    const theirs = `other-${randomBytes(9).toString("hex")}`;
    const global = `proc-${randomBytes(9).toString("hex")}`;
    run.register([mine]);
    other.register([theirs]);
    processSecrets.register([global]);
    const store = await opener.fresh(run);
    try {
      await store.saveStack("web", { a: mine, b: global, c: theirs });
      assert.deepEqual((await store.getStack("web"))?.content, {
        a: "(sensitive)",
        b: "(sensitive)",
        c: theirs,
      });
      await store.upsertInstance({ stack: "web", name: "app1", layers: [], provider: "ssh" });
      await store.setInstanceStatus("web", "app1", "online", `with ${mine}`);
      assert.equal((await store.statusHistory("web", "app1")).at(-1)?.reason, "with (sensitive)");
    } finally {
      await store.close();
    }
  });
}

/**
 * Registers a fresh secret (and one that spans JSON syntax), stores them in every kind of record a
 * store keeps, and checks what reads back is scrubbed: the shared part of the conformance test and
 * of a backend's own check of its files.
 */
export async function storeSecretsEverywhere(
  store: Store,
): Promise<{ secret: string; tricky: string; eventId: number; deploymentId: number }> {
  const secret = `pw-${randomBytes(12).toString("hex")}`;
  const hex = randomBytes(6).toString("hex");
  const tricky = `${hex}","k`;
  registerSecrets([secret, tricky]);
  await store.saveStack("web", { attributes: { db: { password: secret } }, [secret]: 1 });
  await store.nextStateVersion("web", { note: `password is ${secret}`, list: [secret], tricky });
  // a secret spanning JSON syntax: the stored value stays valid and holds no trace of it
  await store.nextStateVersion("other", { a: hex, k: 1 });
  await store.upsertInstance({ stack: "web", name: "app1", layers: [], provider: "ssh", address: secret });
  await store.setInstanceStatus("web", "app1", "online", `logged in with ${secret}`);
  const event = await store.createEvent({ stack: "web", kind: "run-recipes", args: { token: secret } });
  await store.recordInstanceOutcome({
    eventId: event.id,
    instance: "app1",
    status: "failed",
    report: { error: `bad ${secret}` },
    log: `echo ${secret}\n`,
    startedAt: "t",
  });
  const deployment = await store.createDeployment(
    deploymentInput({
      requested: `branch-${secret}`,
      attributes: { db: { password: secret }, [secret]: tricky },
      params: { token: secret },
      user: `${secret}@controller`,
      migration: "pending",
    }),
  );
  await store.claimMigration(deployment.id, "app1");
  await store.recordDeploymentStep({
    deploymentId: deployment.id,
    instance: "app1",
    batch: 0,
    phase: "migrate",
    status: "failed",
    log: `rake db:migrate PASSWORD=${secret}\n`,
    startedAt: "t",
  });
  await store.finishDeployment(deployment.id, "failed", `migration failed: ${secret}`);
  // the server's records: the audit log, an agent's run report, a token's name
  await store.appendAudit({
    actor: `token:${secret}`,
    action: "deploy",
    stack: "web",
    target: `hello ${secret}`,
    outcome: "refused",
    reason: `bad ${secret}`,
    detail: { password: secret, [secret]: tricky },
  });
  await store.recordAgentRun(
    agentRun({ bundle: secret, report: { log: `echo ${secret}`, tricky: `${hex}","k` } }),
  );
  await store.createToken({ name: `ci ${secret}`, grants: [], hash: secretHash() });
  // the feed: what a runner appends (a log line) and what the store wrote of the changes above
  await store.appendFeed([
    {
      stack: "web",
      kind: "log",
      subject: `event:${secret}`,
      data: { line: `echo ${secret}`, [secret]: tricky },
    },
  ]);
  const feed = JSON.stringify(await store.readFeed({ limit: 5000 }));
  assert.ok(feed.includes('"address":"(sensitive)"') && !feed.includes(secret), feed);
  assert.equal((await store.listAudit())[0]?.reason, "bad (sensitive)");
  assert.deepEqual((await store.getStack("web"))?.content, {
    attributes: { db: { password: "(sensitive)" } },
    "(sensitive)": 1,
  });
  assert.equal((await store.getEvent(event.id))?.outcomes[0]?.log, "echo (sensitive)\n");
  assert.equal((await store.latestState("other"))?.state, "(sensitive)");
  const stored = await store.getDeployment(deployment.id);
  assert.deepEqual(stored?.params, { token: "(sensitive)" });
  assert.equal(stored?.note, "migration failed: (sensitive)");
  assert.equal(stored?.steps[0]?.log, "rake db:migrate PASSWORD=(sensitive)\n");
  return { secret, tricky, eventId: event.id, deploymentId: deployment.id };
}
