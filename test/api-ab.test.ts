import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { serveKitchen } from "../src/server/serve.ts";
import type { RunningServer } from "../src/server/server.ts";
import { cliAsync, loginTo } from "./support/cli.ts";
import { type DeploymentJson, phases, WebappKitchen } from "./support/webapp.ts";

// A/B through the server (the webapp example on container hosts, as test/ab.test.ts, without the
// load: that test measures it): `galley deploy --ab 10%`, `galley ab status|abort|promote` with
// --server run in the server by the same code as in the kitchen and print the same --json.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";

describe("A/B deployments through the server", { skip, timeout: 900_000 }, () => {
  let k: WebappKitchen;
  let server: RunningServer;
  let env: Record<string, string> = {};
  let revisionA = "";
  let revisionB = "";
  // async: the server that answers runs in this process
  const galley = async (...args: string[]) => {
    const result = await cliAsync([...args, "--json"], k.dir, env);
    return { ...result, out: result.stdout ? JSON.parse(result.stdout) : undefined };
  };
  const local = (...args: string[]) => galley(...args, "--server", "local");

  before(async () => {
    k = await WebappKitchen.create("galley-api-ab-");
    server = await serveKitchen({ kitchen: k.dir, log: () => {} });
    env = await loginTo(server, k.dir);
    const up = await galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-3000));
    revisionA = [...new Set((await k.served()).values())].join();
    assert.match(revisionA, /^\w{7}$/, "every instance on the first deployment's revision");
    revisionB = (await k.newRevision((source) => `${source}// revision B\n`)).slice(0, 7);
  });
  after(async () => {
    await server?.close();
    k?.down();
  });

  const startAb = async () => {
    const started = await galley(
      "deploy",
      "hello",
      "--stack",
      "webapp",
      "--revision",
      revisionB,
      "--ab",
      "10%",
    );
    assert.equal(started.code, 0, started.stderr.slice(-3000));
    const d = started.out.deployment as DeploymentJson;
    assert.deepEqual([d.strategy, d.status], ["ab", "succeeded"], d.note);
    assert.deepEqual(d.params.instances, ["app1"]);
    for (const name of ["app2", "app3"]) assert.deepEqual(phases(d, name), ["weight:succeeded"]);
    assert.deepEqual(Object.fromEntries(await k.served()), {
      app1: revisionB,
      app2: revisionA,
      app3: revisionA,
    });
    return d;
  };

  test("deploy --ab 10% through the server; ab status the same both ways; abort puts B's instance back on A", async () => {
    const d = await startAb();
    const remote = await galley("ab", "status", "hello", "--stack", "webapp");
    const here = await local("ab", "status", "hello", "--stack", "webapp");
    assert.equal(remote.code, 0, remote.stderr);
    assert.deepEqual(remote.out, here.out);
    assert.equal(remote.out.ab.deployment.id, d.id);
    assert.deepEqual(remote.out.ab.weights, { app1: 22, app2: 99, app3: 99 });
    // a second A/B is refused by the server at once, with the CLI's code and exit code
    const second = await galley("deploy", "hello", "--stack", "webapp", "--ab", "20%");
    assert.deepEqual([second.code, second.out.error.code], [6, "AB_ACTIVE"], second.stdout);

    const aborted = await galley("ab", "abort", "hello", "--stack", "webapp");
    assert.equal(aborted.code, 0, aborted.stderr.slice(-3000));
    const a = aborted.out.deployment as DeploymentJson & { requested: string; user: string };
    assert.equal(a.status, "succeeded", a.note);
    assert.match(a.requested, /^abort A\/B #\d+/);
    assert.equal(a.user, "token:admin");
    assert.deepEqual(Object.fromEntries(await k.served()), {
      app1: revisionA,
      app2: revisionA,
      app3: revisionA,
    });
    const after = await galley("ab", "status", "hello", "--stack", "webapp");
    assert.equal(after.out.ab.deployment, undefined);
    assert.deepEqual(after.out.ab.weights, { app1: 100, app2: 100, app3: 100 });
    // nothing under way: refused both ways with the same code and exit code
    const none = await galley("ab", "promote", "hello", "--stack", "webapp");
    const noneHere = await local("ab", "promote", "hello", "--stack", "webapp");
    assert.deepEqual([none.code, none.out.error.code], [noneHere.code, noneHere.out.error.code]);
    assert.equal(none.out.error.code, "ARGS_INVALID");
  });

  test("ab promote through the server: B to every instance, weights equal; the same --json as deployment show", async () => {
    await startAb();
    const promoted = await galley("ab", "promote", "hello", "--stack", "webapp", "--strategy", "rolling");
    assert.equal(promoted.code, 0, promoted.stderr.slice(-3000));
    const p = promoted.out.deployment as DeploymentJson & { id: number };
    assert.equal(p.status, "succeeded", p.note);
    assert.deepEqual(p.params.instances, ["app2", "app3"]);
    assert.deepEqual(Object.fromEntries(await k.served()), {
      app1: revisionB,
      app2: revisionB,
      app3: revisionB,
    });
    const shown = await local("deployment", "show", String(p.id), "--stack", "webapp");
    assert.deepEqual(shown.out, promoted.out);
    const status = await galley("ab", "status", "hello", "--stack", "webapp");
    assert.deepEqual(status.out.ab.weights, { app1: 100, app2: 100, app3: 100 });
  });
});
