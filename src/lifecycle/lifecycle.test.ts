import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { openStack } from "./context.ts";
import { Lifecycle } from "./lifecycle.ts";

// a kitchen with one stack whose layer has no configure recipes: a configure touches no host
async function kitchen(stack: string, instances: string[]): Promise<string> {
  const dir = await tempDir("galley-lifecycle-");
  await fs.mkdir(path.join(dir, "cookbooks"));
  await fs.mkdir(path.join(dir, "stacks"));
  const file = path.join(dir, "stacks", `${stack}.yaml`);
  const list = instances.map((name) => `  - { name: ${name}, layers: [app] }`).join("\n");
  await fs.writeFile(
    file,
    `name: ${stack}\ncookbooks: ../cookbooks\nlayers:\n  - name: app\ninstances:\n${list}\n`,
  );
  return file;
}

test("each lifecycle has its own configure queue: two stores in one process share none of it", async () => {
  const a = await openStack(await kitchen("alpha", ["a1", "a2"]));
  const b = await openStack(await kitchen("beta", ["b1"]));
  try {
    const alpha = await Lifecycle.open(a);
    const beta = await Lifecycle.open(b);
    for (const name of ["a1", "a2"]) await a.store.setInstanceStatus("alpha", name, "online", "test");
    await b.store.setInstanceStatus("beta", "b1", "online", "test");
    // three requests at once on alpha: the first runs, the second is overtaken by the third
    await Promise.all([alpha.requestConfigure(), alpha.requestConfigure(), alpha.requestConfigure()]);
    await beta.requestConfigure();
    await Promise.all([alpha.idle(), beta.idle()]);

    const kinds = (events: Lifecycle["events"]) => events.map((e) => `${e.event.stack}:${e.event.status}`);
    assert.deepEqual(kinds(alpha.events), ["alpha:succeeded", "alpha:superseded", "alpha:succeeded"]);
    assert.deepEqual(
      kinds(beta.events),
      ["beta:succeeded"],
      "beta's configure was not superseded by alpha's",
    );
    const stored = async (lifecycle: Lifecycle, stack: string) =>
      (await lifecycle.context.store.listEvents(stack)).map((e) => `${e.kind}:${e.status}`).reverse();
    assert.deepEqual(await stored(alpha, "alpha"), [
      "configure:succeeded",
      "configure:superseded",
      "configure:succeeded",
    ]);
    assert.deepEqual(await stored(beta, "beta"), ["configure:succeeded"]);
    assert.deepEqual(await a.store.listEvents("beta"), [], "nothing of beta in alpha's store");
    // the configure reached each online instance of its own stack only
    const last = alpha.events.at(-1)!;
    assert.deepEqual([...last.results.keys()], ["a1", "a2"]);
    assert.deepEqual([...beta.events[0]!.results.keys()], ["b1"]);
  } finally {
    await a.store.close();
    await b.store.close();
  }
});

test("a configure requested while another runs is queued on that lifecycle and runs after it", async () => {
  const context = await openStack(await kitchen("gamma", ["g1"]));
  try {
    const lifecycle = await Lifecycle.open(context);
    await context.store.setInstanceStatus("gamma", "g1", "online", "test");
    await lifecycle.requestConfigure();
    await lifecycle.requestConfigure();
    await lifecycle.idle();
    assert.deepEqual(
      lifecycle.events.map((e) => e.event.status),
      ["succeeded", "succeeded"],
    );
    // a second lifecycle on the same store starts with an empty queue
    const other = await Lifecycle.open(context);
    await other.idle();
    assert.equal(other.events.length, 0);
  } finally {
    await context.store.close();
  }
});

test("the stack state shows an instance drained out of service, as a new state version", async () => {
  const context = await openStack(await kitchen("delta", ["d1", "d2"]));
  try {
    const lifecycle = await Lifecycle.open(context);
    const before = await lifecycle.snapshot();
    assert.deepEqual(
      before.state.instances.map((i) => [i.name, i.inService]),
      [
        ["d1", true],
        ["d2", true],
      ],
    );
    assert.equal((await lifecycle.snapshot()).version, before.version, "unchanged: the same version");
    await context.store.setInstanceService("delta", "d2", false);
    const drained = await lifecycle.snapshot();
    assert.equal(drained.version, before.version + 1);
    assert.deepEqual(
      drained.state.instances.map((i) => i.inService),
      [true, false],
    );
    const stored = (await context.store.latestState("delta"))!.state as typeof drained.state;
    assert.deepEqual(
      stored.instances.map((i) => i.inService),
      [true, false],
      "the stored version holds it too",
    );
  } finally {
    await context.store.close();
  }
});
