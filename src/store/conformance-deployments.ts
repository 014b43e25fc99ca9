// The Store contract for deployments, their steps, the migration lock and instances in service: part
// of the conformance suite (storeConformance registers it). Only the Store interface is used.
import assert from "node:assert/strict";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import type { StoreOpener } from "./conformance.ts";
import type { DeploymentInput, DeploymentStep, Store } from "./store.ts";

const stateInvalid = (pattern: RegExp) => (error: unknown) =>
  error instanceof GalleyError && error.code === "STATE_INVALID" && pattern.test(error.message);

/** A deployment of `app` (default hello) to stack web, with what a caller may change. */
export function deploymentInput(overrides: Partial<DeploymentInput> = {}): DeploymentInput {
  return {
    stack: "web",
    app: "hello",
    revision: "c0ffee".padEnd(40, "0"),
    requested: "main",
    attributes: { hello: { greeting: "hi" } },
    strategy: "rolling",
    params: { batch: 1, maxFail: 0 },
    user: "alice@controller",
    migration: "none",
    ...overrides,
  };
}

/** Registers the deployment part of the Store conformance tests under `name`. */
export function deploymentConformance(name: string, opener: StoreOpener): void {
  const it = (title: string, fn: (store: Store) => Promise<void>) =>
    test(`${name} store: ${title}`, async () => {
      const store = await opener.fresh();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  it("deployments round-trip with every parameter a rollback repeats; ids increase; newest first", async (store) => {
    const input = deploymentInput({ bundle: "b".repeat(64), migration: "pending" });
    const first = await store.createDeployment(input);
    assert.deepEqual(first, {
      ...input,
      id: first.id,
      status: "pending",
      createdAt: first.createdAt,
      startedAt: undefined,
      finishedAt: undefined,
    });
    assert.ok(!Number.isNaN(Date.parse(first.createdAt)));
    const api = await store.createDeployment(
      deploymentInput({ app: "api", strategy: "cutover", params: {} }),
    );
    const rollback = await store.createDeployment(
      deploymentInput({ revision: "1".repeat(40), requested: "v1", rollbackOf: first.id }),
    );
    await store.createDeployment(deploymentInput({ stack: "other" }));
    assert.ok(first.id < api.id && api.id < rollback.id);
    assert.equal(rollback.rollbackOf, first.id);
    assert.ok(!("bundle" in rollback) && !("note" in rollback) && !("migrationInstance" in rollback));
    assert.deepEqual(
      (await store.listDeployments("web")).map((d) => d.id),
      [rollback.id, api.id, first.id],
    );
    assert.deepEqual(
      (await store.listDeployments("web", { app: "hello" })).map((d) => d.id),
      [rollback.id, first.id],
    );
    assert.deepEqual(
      (await store.listDeployments("web", { app: "hello", limit: 1 })).map((d) => d.id),
      [rollback.id],
    );
    assert.deepEqual(
      (await store.listDeployments("web", { limit: 2 })).map((d) => d.id),
      [rollback.id, api.id],
    );
    assert.deepEqual(await store.listDeployments("nope"), []);
    const { steps, ...record } = (await store.getDeployment(first.id))!;
    assert.deepEqual(record, first);
    assert.deepEqual(steps, []);
    assert.equal(await store.getDeployment(9999), undefined);
    const bundled = await store.setDeploymentBundle(api.id, "d".repeat(64));
    assert.equal(bundled.bundle, "d".repeat(64));
    assert.equal((await store.getDeployment(api.id))?.bundle, "d".repeat(64));
  });

  it("a deployment runs, ends with a note; deployedRevision is the app's newest succeeded one", async (store) => {
    assert.equal(await store.deployedRevision("web", "hello"), undefined);
    const one = await store.createDeployment(deploymentInput({ revision: "1".repeat(40) }));
    const started = await store.startDeployment(one.id);
    assert.equal(started.status, "running");
    assert.ok(started.startedAt !== undefined && started.finishedAt === undefined);
    const done = await store.finishDeployment(one.id, "succeeded");
    assert.equal(done.status, "succeeded");
    assert.ok(done.finishedAt !== undefined && !("note" in done));
    assert.equal((await store.deployedRevision("web", "hello"))?.revision, "1".repeat(40));

    // a failed, a rolled-back and an interrupted deployment pin nothing; another app's neither
    const two = await store.createDeployment(deploymentInput({ revision: "2".repeat(40) }));
    await store.startDeployment(two.id);
    const failed = await store.finishDeployment(two.id, "failed", "health check failed on app2");
    assert.equal(failed.note, "health check failed on app2");
    const three = await store.createDeployment(deploymentInput({ revision: "3".repeat(40) }));
    await store.finishDeployment(three.id, "rolled_back", "rolled back to deployment 1");
    const four = await store.createDeployment(deploymentInput({ revision: "4".repeat(40) }));
    await store.startDeployment(four.id);
    const interrupted = await store.finishDeployment(four.id, "interrupted");
    const api = await store.createDeployment(deploymentInput({ app: "api", revision: "a".repeat(40) }));
    await store.finishDeployment(api.id, "succeeded");
    assert.equal((await store.deployedRevision("web", "hello"))?.id, one.id);
    assert.equal((await store.deployedRevision("web", "api"))?.revision, "a".repeat(40));
    assert.equal(await store.deployedRevision("other", "hello"), undefined);

    // an interrupted deployment resumes: running again, its first start kept, not finished
    const resumed = await store.startDeployment(four.id);
    assert.equal(resumed.status, "running");
    assert.equal(resumed.startedAt, interrupted.startedAt);
    assert.equal(resumed.finishedAt, undefined);
    await store.finishDeployment(four.id, "succeeded");
    assert.equal((await store.deployedRevision("web", "hello"))?.id, four.id);
    // an ended one does not start again
    await assert.rejects(
      store.startDeployment(one.id),
      stateInvalid(/deployment \d+ \(hello in stack web\) ended succeeded/),
    );
    await assert.rejects(store.startDeployment(two.id), stateInvalid(/ended failed/));
  });

  it("a step is recorded once per (deployment, instance, batch, phase) and updated in place, in order", async (store) => {
    const deployment = await store.createDeployment(deploymentInput());
    const step = (instance: string, batch: number, phase: string, more: Partial<DeploymentStep> = {}) =>
      store.recordDeploymentStep({
        deploymentId: deployment.id,
        instance,
        batch,
        phase,
        status: "running",
        startedAt: "t1",
        ...more,
      });
    await step("app1", 0, "drain");
    await step("app1", 0, "prepare");
    await step("app2", 1, "prepare");
    await step("app1", 0, "drain", { status: "succeeded", log: "drained\n", finishedAt: "t2" });
    await step("app1", 0, "switch", {
      status: "succeeded",
      release: String(deployment.id),
      finishedAt: "t3",
    });
    await step("app1", 0, "prepare", { status: "failed", log: "tar: bad archive\n", finishedAt: "t2" });
    // the same phase in another batch (a retry) is its own step
    await step("app1", 2, "prepare", { status: "skipped" });
    const detail = (await store.getDeployment(deployment.id))!;
    assert.deepEqual(detail.steps, [
      {
        deploymentId: deployment.id,
        instance: "app1",
        batch: 0,
        phase: "drain",
        status: "succeeded",
        log: "drained\n",
        startedAt: "t1",
        finishedAt: "t2",
      },
      {
        deploymentId: deployment.id,
        instance: "app1",
        batch: 0,
        phase: "prepare",
        status: "failed",
        log: "tar: bad archive\n",
        startedAt: "t1",
        finishedAt: "t2",
      },
      {
        deploymentId: deployment.id,
        instance: "app2",
        batch: 1,
        phase: "prepare",
        status: "running",
        startedAt: "t1",
      },
      {
        deploymentId: deployment.id,
        instance: "app1",
        batch: 0,
        phase: "switch",
        status: "succeeded",
        release: String(deployment.id),
        startedAt: "t1",
        finishedAt: "t3",
      },
      {
        deploymentId: deployment.id,
        instance: "app1",
        batch: 2,
        phase: "prepare",
        status: "skipped",
        startedAt: "t1",
      },
    ]);
    await assert.rejects(
      step("app1", 0, "drain", { status: "done" as "running" }),
      stateInvalid(/unknown deployment step status "done"/),
    );
    await assert.rejects(
      store.recordDeploymentStep({
        deploymentId: 9999,
        instance: "a",
        batch: 0,
        phase: "drain",
        status: "running",
        startedAt: "t",
      }),
      stateInvalid(/no deployment 9999/),
    );
    assert.equal((await store.getDeployment(deployment.id))?.steps.length, 5);
  });

  it("the migration claim is atomic: of many concurrent callers on two connections, one claims", async (a) => {
    const b = await opener.again();
    try {
      const deployment = await a.createDeployment(deploymentInput({ migration: "pending" }));
      assert.equal(deployment.migration, "pending");
      const instances = ["app1", "app2", "app3", "app4", "app5", "app6"];
      const results = await Promise.all(
        instances.map((instance, n) => (n % 2 === 0 ? a : b).claimMigration(deployment.id, instance)),
      );
      assert.equal(results.filter((r) => r === "claimed").length, 1, String(results));
      assert.equal(results.filter((r) => r === "running").length, instances.length - 1, String(results));
      const winner = instances[results.indexOf("claimed")];
      const claimed = (await b.getDeployment(deployment.id))!;
      assert.equal(claimed.migration, "running");
      assert.equal(claimed.migrationInstance, winner);
      // the holder asking again is told it runs: a claim is taken once
      assert.equal(await a.claimMigration(deployment.id, winner!), "running");
      const done = await b.finishMigration(deployment.id, "done");
      assert.equal(done.migration, "done");
      assert.equal(done.migrationInstance, winner);
      assert.equal(await a.claimMigration(deployment.id, "app9"), "done");
      assert.equal(
        (await a.finishMigration(deployment.id, "done")).migration,
        "done",
        "finishing twice is harmless",
      );
    } finally {
      await b.close();
    }
  });

  it("the migration lock: none without a migrate step; a dead claim is reset; a failed one refused", async (store) => {
    const plain = await store.createDeployment(deploymentInput());
    assert.equal(await store.claimMigration(plain.id, "app1"), "none");
    assert.equal((await store.getDeployment(plain.id))?.migration, "none");
    await assert.rejects(store.resetMigration(plain.id, "pending"), stateInvalid(/has no migration/));

    const deployment = await store.createDeployment(deploymentInput({ migration: "pending" }));
    await assert.rejects(
      store.finishMigration(deployment.id, "done"),
      stateInvalid(/is pending, not running/),
    );
    assert.equal(await store.claimMigration(deployment.id, "app1"), "claimed");
    // the deploying process died mid-migration: its claim is still running
    assert.equal(await store.claimMigration(deployment.id, "app2"), "running");
    const rearmed = await store.resetMigration(deployment.id, "pending");
    assert.equal(rearmed.migration, "pending");
    assert.ok(!("migrationInstance" in rearmed));
    assert.equal(await store.claimMigration(deployment.id, "app2"), "claimed");
    assert.equal((await store.getDeployment(deployment.id))?.migrationInstance, "app2");
    // resume found the migration applied on the host: done, keeping who ran it
    const done = await store.resetMigration(deployment.id, "done");
    assert.equal(done.migration, "done");
    assert.equal(done.migrationInstance, "app2");
    assert.equal(await store.claimMigration(deployment.id, "app3"), "done");

    const failing = await store.createDeployment(deploymentInput({ migration: "pending" }));
    assert.equal(await store.claimMigration(failing.id, "app1"), "claimed");
    assert.equal((await store.finishMigration(failing.id, "failed")).migration, "failed");
    await assert.rejects(store.finishMigration(failing.id, "done"), stateInvalid(/is failed, not running/));
    await assert.rejects(
      store.claimMigration(failing.id, "app2"),
      stateInvalid(/the migration of deployment \d+ \(hello in stack web\) failed/),
    );
    assert.equal((await store.resetMigration(failing.id, "pending")).migration, "pending");
    assert.equal(await store.claimMigration(failing.id, "app2"), "claimed");
  });

  it("an unknown deployment, status or migration state is refused and changes nothing", async (store) => {
    const deployment = await store.createDeployment(deploymentInput({ migration: "pending" }));
    for (const call of [
      () => store.startDeployment(9999),
      () => store.finishDeployment(9999, "failed"),
      () => store.setDeploymentBundle(9999, "b"),
      () => store.claimMigration(9999, "app1"),
      () => store.finishMigration(9999, "done"),
      () => store.resetMigration(9999, "pending"),
      () => store.createDeployment(deploymentInput({ rollbackOf: 9999 })),
    ])
      await assert.rejects(call(), stateInvalid(/no deployment 9999/));
    await assert.rejects(
      store.finishDeployment(deployment.id, "running" as "failed"),
      stateInvalid(/unknown deployment end status "running"/),
    );
    await assert.rejects(
      store.createDeployment(deploymentInput({ migration: "done" as "none" })),
      stateInvalid(/unknown migration state "done"/),
    );
    await assert.rejects(store.finishMigration(deployment.id, "running" as "done"), stateInvalid(/unknown/));
    await assert.rejects(store.resetMigration(deployment.id, "running" as "done"), stateInvalid(/unknown/));
    assert.deepEqual(
      (await store.listDeployments("web")).map((d) => [d.id, d.status, d.migration]),
      [[deployment.id, "pending", "pending"]],
    );
  });

  it("an instance is in service by default; a deployment drains it and puts it back", async (store) => {
    const created = await store.upsertInstance({
      stack: "web",
      name: "app1",
      layers: ["app"],
      provider: "ssh",
    });
    assert.equal(created.inService, true);
    await store.setInstanceService("web", "app1", false);
    assert.equal((await store.getInstance("web", "app1"))?.inService, false);
    // neither an upsert nor a status change puts it back
    await store.upsertInstance({ stack: "web", name: "app1", layers: ["app", "lb"], provider: "ssh" });
    await store.setInstanceStatus("web", "app1", "online", "setup ran");
    assert.deepEqual(
      (await store.listInstances("web")).map((i) => [i.name, i.status, i.inService]),
      [["app1", "online", false]],
    );
    await store.setInstanceService("web", "app1", true);
    assert.equal((await store.getInstance("web", "app1"))?.inService, true);
    await assert.rejects(
      store.setInstanceService("web", "nope", false),
      stateInvalid(/no instance nope in stack web/),
    );
  });

  it("an instance's weight is 100 by default; an A/B deployment sets it, 0..256 only; the pin skips A/B", async (store) => {
    await store.upsertInstance({ stack: "web", name: "app1", layers: ["app"], provider: "ssh" });
    assert.equal((await store.getInstance("web", "app1"))?.weight, 100);
    await store.setInstanceWeight("web", "app1", 20);
    await store.upsertInstance({ stack: "web", name: "app1", layers: ["app", "lb"], provider: "ssh" });
    assert.equal((await store.getInstance("web", "app1"))?.weight, 20);
    await store.setInstanceWeight("web", "app1", 0);
    assert.equal((await store.getInstance("web", "app1"))?.weight, 0);
    for (const bad of [-1, 257, 1.5])
      await assert.rejects(
        store.setInstanceWeight("web", "app1", bad),
        stateInvalid(/not a whole number from 0 to 256/),
      );
    await assert.rejects(
      store.setInstanceWeight("web", "nope", 50),
      stateInvalid(/no instance nope in stack web/),
    );
    const input = {
      stack: "web",
      app: "shop",
      revision: "a".repeat(40),
      requested: "main",
      attributes: {},
      params: {},
      user: "me@here",
      migration: "none" as const,
    };
    const a = await store.createDeployment({ ...input, strategy: "rolling" });
    await store.finishDeployment(a.id, "succeeded");
    const b = await store.createDeployment({ ...input, revision: "b".repeat(40), strategy: "ab" });
    await store.finishDeployment(b.id, "succeeded");
    assert.equal((await store.deployedRevision("web", "shop"))?.id, a.id);
  });

  it("deployment writes inside a failed transaction leave nothing behind", async (store) => {
    await store.upsertInstance({ stack: "web", name: "app1", layers: ["app"], provider: "ssh" });
    await assert.rejects(
      store.transaction(async (tx) => {
        const deployment = await tx.createDeployment(deploymentInput({ migration: "pending" }));
        await tx.startDeployment(deployment.id);
        assert.equal(await tx.claimMigration(deployment.id, "app1"), "claimed");
        await tx.setInstanceService("web", "app1", false);
        throw new Error("the controller failed");
      }),
      /the controller failed/,
    );
    assert.deepEqual(await store.listDeployments("web"), []);
    assert.equal((await store.getInstance("web", "app1"))?.inService, true);
  });
}
