import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { hacli, reloadScript } from "../examples/webapp/cookbooks/lb/recipes/admin.ts";
import { parseServersState } from "../src/deploy/lb/haproxy.ts";
import { cli } from "./support/cli.ts";
import { startLoad } from "./support/load.ts";
import { type DeploymentJson, noFailures, phases, WebappKitchen } from "./support/webapp.ts";

// A/B deployments of the webapp example (HAProxy in front of three Node.js app instances) on
// container hosts: `--ab 10%` puts revision B on one instance with load-balancer weights, 10,000
// requests through HAProxy measure B's share, and abort and promote end it, all under load with
// no failed request.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";

type Deployment = DeploymentJson;

interface AbStatus {
  deployment?: Deployment;
  instances: string[];
  weights: Record<string, number>;
}

describe("A/B deployments of the webapp example", { skip, timeout: 900_000 }, () => {
  let kitchen = "";
  let lb = "";
  let revisionA = "";
  let revisionB = "";
  let k: WebappKitchen;
  const galley = (...args: string[]) => k.galley(...args);
  const deploy = (...args: string[]) => k.deploy(...args);
  const served = () => k.served();
  // responses counted by the revision that answered
  const underLoad = <T>(work: () => Promise<T>) => {
    k.lb = lb;
    return k.underLoad(work, /\(hello (\w+)/);
  };
  const abStatus = () => galley("ab", "status", "hello", "--stack", "webapp").out.ab as AbStatus;

  before(async () => {
    k = await WebappKitchen.create("galley-ab-");
    kitchen = k.dir;
    const up = galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-3000));
    lb = up.out.instances.find((i: { name: string }) => i.name === "lb1").address;
    revisionA = [...new Set((await served()).values())].join();
    assert.match(revisionA, /^\w{7}$/, "every instance on the first deployment's revision");
    revisionB = (await k.newRevision((source) => `${source}// revision B\n`)).slice(0, 7);
  });
  after(() => k?.down());

  const startAb = async () => {
    const { value, load } = await underLoad(() =>
      deploy("deploy", "hello", "--stack", "webapp", "--revision", revisionB, "--ab", "10%"),
    );
    noFailures(load);
    const d = value.deployment;
    assert.deepEqual([d.strategy, d.status, value.code], ["ab", "succeeded", 0], d.note);
    assert.deepEqual(d.params.instances, ["app1"], "B on the fewest instances: one of three");
    assert.deepEqual(phases(d, "app1"), [
      "drain:succeeded",
      "prepare:succeeded",
      "switch:succeeded",
      "health:succeeded",
      "undrain:succeeded",
      "weight:succeeded",
    ]);
    for (const name of ["app2", "app3"]) assert.deepEqual(phases(d, name), ["weight:succeeded"]);
    assert.deepEqual(Object.fromEntries(await served()), {
      app1: revisionB,
      app2: revisionA,
      app3: revisionA,
    });
    return d;
  };

  test("--ab 10%: B on one instance, weights give B 10% of 10,000 requests (±2 points), 0 failed", async (t) => {
    const d = await startAb();
    const status = abStatus();
    assert.equal(status.deployment?.id, d.id);
    assert.deepEqual(status.instances, ["app1"]);
    assert.deepEqual(status.weights, { app1: 22, app2: 99, app3: 99 });
    const load = startLoad({ url: `http://${lb}/`, byBody: /\(hello (\w+)/, connections: 4, amount: 10_000 });
    const split = await load.done;
    noFailures(split);
    assert.equal(split.requests, 10_000);
    const shareB = (100 * (split.byBody.get(revisionB) ?? 0)) / split.requests;
    assert.equal((split.byBody.get(revisionA) ?? 0) + (split.byBody.get(revisionB) ?? 0), 10_000);
    t.diagnostic(`B's share of 10,000 requests: ${shareB}% (asked 10%)`);
    assert.ok(Math.abs(shareB - 10) <= 2, `B's share ${shareB}% of 10,000 requests, asked 10%`);
    // a reload (a new HAProxy process) keeps the weights: the server-state file carries them
    const socket = "/run/haproxy/admin.sock";
    const reload = cli(
      ["hosts", "exec", "lb1", "--", "sh", "-c", reloadScript, "sh", socket, "/var/lib/haproxy/server-state"],
      kitchen,
    );
    assert.equal(reload.code, 0, reload.stderr);
    const shown = cli(
      [
        "hosts",
        "exec",
        "lb1",
        "--",
        "sh",
        "-c",
        `${hacli} hacli "$1" "show servers state app"`,
        "sh",
        socket,
      ],
      kitchen,
    );
    assert.deepEqual(
      parseServersState(shown.stdout, "app", "srv_uweight"),
      new Map([
        ["app1", 22],
        ["app2", 99],
        ["app3", 99],
      ]),
      shown.stdout + shown.stderr,
    );
  });

  test("a normal deploy, a rollback or a second A/B while the A/B runs is refused: promote or abort first", () => {
    const count = () =>
      (galley("deployments", "hello", "--stack", "webapp").out.deployments as Deployment[]).length;
    const before = count();
    for (const args of [
      ["deploy", "hello", "--stack", "webapp"],
      ["deploy", "hello", "--stack", "webapp", "--ab", "20%"],
      ["rollback", "hello", "--stack", "webapp"],
    ]) {
      const result = galley(...args);
      assert.equal(result.code, 6, result.stderr);
      assert.equal(result.out.error.code, "AB_ACTIVE");
      assert.match(result.out.error.hint, /galley ab promote hello .* galley ab abort hello/);
    }
    assert.equal(count(), before);
  });

  test("galley ab abort: B's instance back to A's release under load, 0 failed; weights equal", async () => {
    const { value, load } = await underLoad(() => deploy("ab", "abort", "hello", "--stack", "webapp"));
    noFailures(load);
    const d = value.deployment;
    assert.equal(d.status, "succeeded", d.note);
    assert.match(d.requested, /^abort A\/B #\d+/);
    assert.deepEqual(d.params.instances, ["app1"]);
    assert.deepEqual(Object.fromEntries(await served()), {
      app1: revisionA,
      app2: revisionA,
      app3: revisionA,
    });
    const status = abStatus();
    assert.equal(status.deployment, undefined);
    assert.deepEqual(status.weights, { app1: 100, app2: 100, app3: 100 });
  });

  test("galley ab promote: B to every instance under load, 0 failed; B's instance kept its release; weights equal", async () => {
    const ab = await startAb();
    const release = ab.steps.find((s) => s.instance === "app1" && s.phase === "switch")!.release;
    const { value, load } = await underLoad(() =>
      deploy("ab", "promote", "hello", "--stack", "webapp", "--strategy", "rolling"),
    );
    noFailures(load);
    const d = value.deployment;
    assert.equal(d.status, "succeeded", d.note);
    assert.deepEqual(d.params.instances, ["app2", "app3"]);
    assert.equal(d.params.release, release, "the A/B's release, not a new one");
    assert.deepEqual(Object.fromEntries(await served()), {
      app1: revisionB,
      app2: revisionB,
      app3: revisionB,
    });
    const status = abStatus();
    assert.equal(status.deployment, undefined);
    assert.deepEqual(status.weights, { app1: 100, app2: 100, app3: 100 });
    // the stack pins the promoted deployment, and a deploy is allowed again
    assert.equal(galley("deploy", "hello", "--stack", "webapp", "--plan").code, 0);
  });
});
