import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as deployments from "../src/server/routes/deployments.ts";
import * as events from "../src/server/routes/events.ts";
import * as instances from "../src/server/routes/instances.ts";
import * as stacks from "../src/server/routes/stacks.ts";
import { type RunningServer, startServer } from "../src/server/server.ts";
import { Remote, readContext } from "../src/cli/remote.ts";
import { GalleyError } from "../src/core/errors.ts";
import { cliAsync, loginTo } from "./support/cli.ts";
import { type DeploymentJson, phases, WebappKitchen, webappApps as apps } from "./support/webapp.ts";

// The webapp example (HAProxy, three app instances, PostgreSQL on container hosts) driven through
// a real server by the CLI with --server: stack up (and its first deployment), a rolling deploy and
// a rollback run in the server by the same rollout controller, and print what the local CLI prints.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";

describe("deployments through the server's API", { skip, timeout: 900_000 }, () => {
  let k: WebappKitchen;
  let server: RunningServer;
  let env: Record<string, string> = {};
  // async: the server that answers runs in this process
  const galley = async (...args: string[]) => {
    const result = await cliAsync([...args, "--json"], k.dir, env);
    return { ...result, out: result.stdout ? JSON.parse(result.stdout) : undefined };
  };

  before(async () => {
    k = await WebappKitchen.create("galley-api-deploy-");
    server = await startServer({
      kitchen: k.dir,
      routes: [stacks.register, instances.register, events.register, deployments.register],
      services: [stacks.backgroundService],
      log: () => {},
    });
    env = await loginTo(server, k.dir);
  });
  after(async () => {
    await server?.close();
    k?.down();
  });

  test("stack up through the server: the hosts, then the app's first deployment, recorded as the token's", async () => {
    const up = await galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-3000));
    assert.deepEqual(
      up.out.instances.filter((i: { status: string }) => i.status === "online").length,
      5,
      "lb1, app1–3, db1 online",
    );
    k.lb = up.out.instances.find((i: { name: string }) => i.name === "lb1").address;
    const list = (await galley("deployments", "hello", "--stack", "webapp")).out
      .deployments as DeploymentJson[];
    assert.deepEqual(
      list.map((d) => [d.strategy, d.status, (d as unknown as { user: string }).user]),
      [["cutover", "succeeded", "token:admin"]],
    );
  });

  test("a rolling deploy and a rollback through the server; the same --json as the kitchen's", async () => {
    const first = (await galley("deployments", "hello", "--stack", "webapp")).out
      .deployments[0] as DeploymentJson;
    const revision = await k.newRevision((s) => `${s}// through the API\n`);
    const deployed = await galley("deploy", "hello", "--stack", "webapp", "--strategy", "rolling");
    assert.equal(deployed.code, 0, deployed.stderr.slice(-3000));
    const d = deployed.out.deployment as DeploymentJson;
    assert.equal(d.status, "succeeded", d.note);
    for (const name of apps)
      assert.deepEqual(phases(d, name), [
        "drain:succeeded",
        "prepare:succeeded",
        "switch:succeeded",
        "health:succeeded",
        "undrain:succeeded",
      ]);
    assert.match(deployed.stderr, /app1 +batch 1 +switch +ok/, "each step on stderr as it ends");
    assert.deepEqual(new Set((await k.served()).values()), new Set([revision]));

    for (const args of [
      ["deployments", "--stack", "webapp"],
      ["deployment", "show", String(d.id), "--stack", "webapp"],
      ["stack", "status", "webapp"],
    ]) {
      const remote = await galley(...args);
      const local = await galley(...args, "--server", "local");
      assert.equal(remote.code, 0, remote.stderr);
      assert.deepEqual(remote.out, local.out, args.join(" "));
    }

    const back = await galley("rollback", "hello", "--stack", "webapp");
    assert.equal(back.code, 0, back.stderr.slice(-3000));
    assert.equal(back.out.deployment.rollbackOf, first.id);
    assert.equal(back.out.deployment.status, "succeeded");
    assert.deepEqual(new Set((await k.served()).values()), new Set([first.revision.slice(0, 7)]));
  });

  test("a second deployment of the app while one runs is refused at once (DEPLOY_LOCKED), not queued", async () => {
    await k.newRevision((s) => `${s}// twice\n`);
    const one = galley("deploy", "hello", "--stack", "webapp", "--strategy", "rolling");
    // the first one's record exists once the server answered it: wait for it to be running
    for (const deadline = Date.now() + 300_000; ; ) {
      const list = (await galley("deployments", "hello", "--stack", "webapp", "--limit", "1")).out
        .deployments;
      if (list[0]?.status === "running") break;
      assert.ok(Date.now() < deadline, "the first deployment started");
      await new Promise((r) => setTimeout(r, 200));
    }
    const two = await galley("deploy", "hello", "--stack", "webapp");
    assert.equal(two.out.error.code, "DEPLOY_LOCKED", two.stdout);
    assert.equal(two.code, 6);
    const first = await one;
    assert.equal(first.code, 0, first.stderr.slice(-3000));
  });

  test("POST /v1/deployments/:id/rollback goes back to that deployment; a finished one is not resumed", async () => {
    const api = new Remote((await readContext(env.GALLEY_CONTEXT))!);
    const list = (await galley("deployments", "hello", "--stack", "webapp")).out
      .deployments as DeploymentJson[];
    const target = list.find((d) => d.status === "succeeded" && d.revision !== list[0]!.revision)!;
    const answer = await api.send<{ id: number }>("POST", `/v1/deployments/${target.id}/rollback`, {});
    assert.equal(answer.status, 202);
    const done = await followDeploymentJson(api, answer.body.id);
    assert.deepEqual([done.status, done.rollbackOf], ["succeeded", target.id]);
    assert.deepEqual(new Set((await k.served()).values()), new Set([target.revision.slice(0, 7)]));
    const resume = await api.send("POST", `/v1/deployments/${done.id}/resume`).catch((e: GalleyError) => e);
    assert.ok(resume instanceof GalleyError);
    assert.equal(resume.code, "DEPLOY_FAILED");
  });

  test("stack down through the server stops every instance", async () => {
    const down = await galley("stack", "down", "webapp");
    assert.equal(down.code, 0, down.stderr.slice(-3000));
    assert.deepEqual(
      new Set(down.out.instances.map((i: { status: string }) => i.status)),
      new Set(["stopped"]),
    );
  });
});

// a deployment the server runs, until it ends
async function followDeploymentJson(api: Remote, id: number): Promise<DeploymentJson & { id: number }> {
  for (const deadline = Date.now() + 600_000; ; ) {
    const { deployment } = await api.request<{ deployment: DeploymentJson & { id: number } }>(
      "GET",
      `/v1/deployments/${id}`,
    );
    if (!["pending", "running"].includes(deployment.status)) return deployment;
    assert.ok(Date.now() < deadline, `deployment #${id} ended`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
