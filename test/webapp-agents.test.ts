import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { StackContext } from "../src/lifecycle/context.ts";
import { containerProvider } from "../src/providers/container/provider.ts";
import { serveKitchen } from "../src/server/serve.ts";
import type { RunningServer } from "../src/server/server.ts";
import { call } from "../src/server/test-support.ts";
import { cli, cliAsync, loginTo } from "./support/cli.ts";
import { WebappKitchen, webappApps } from "./support/webapp.ts";

// The webapp example (HAProxy, three app instances, PostgreSQL) with app2 managed by its agent,
// driven through `galley server` by the CLI: stack up installs and enrolls app2's agent and reaches
// it through the agent channel, a rolling deploy switches the SSH instances and the agent one in
// one deployment, and app2's agent repeats its configure as drift runs the server stores. The
// example's cookbooks are locked here (agents receive bundles by content id).

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";

describe("the webapp example with an agent-managed app instance, through the server", {
  skip,
  timeout: 1_200_000,
}, () => {
  let k: WebappKitchen;
  let server: RunningServer;
  let env: Record<string, string> = {};
  const galley = async (...args: string[]) => {
    const result = await cliAsync([...args, "--json"], k.dir, env);
    return { ...result, out: result.stdout ? JSON.parse(result.stdout) : undefined };
  };

  before(async () => {
    k = await WebappKitchen.create("galley-webapp-agents-");
    const cache = path.join(k.dir, ".galley", "test-cache");
    // the server runs in this process: its prepared bundles go to the same cache as the CLI's
    process.env.GALLEY_CACHE_DIR = cache;
    await fs.writeFile(
      path.join(k.dir, "cookbooks.yaml"),
      ["cookbooks:", ...["app", "db", "lb"].map((c) => `  ${c}: { path: ./cookbooks/${c} }`), ""].join("\n"),
    );
    const installed = cli(["cookbooks", "install"], k.dir, { GALLEY_CACHE_DIR: cache });
    assert.equal(installed.code, 0, installed.stderr);
    const stackFile = path.join(k.dir, "stacks", "webapp.yaml");
    const stack = await fs.readFile(stackFile, "utf8");
    const agentLine =
      "  - { name: app2, layers: [app], provider: { type: container, init: systemd }, transport: agent }";
    const edited = stack.replace(/^ {2}- \{ name: app2, .*\}$/m, agentLine);
    assert.notEqual(edited, stack, "the example names app2 on one line");
    await fs.writeFile(stackFile, edited);
    // app2's host first: the server's agent URL is the address the hosts reach this machine at
    const hosts = await containerProvider.provision(
      { kitchen: k.dir } as StackContext,
      [{ name: "app2", provider: { type: "container" as const, init: "systemd" as const } }],
      () => {},
    );
    const app2 = hosts.get("app2")!;
    assert.ok(app2.ok, app2.ok ? "" : app2.error);
    const gateway = app2.address.replace(/\.\d+$/, ".1");
    server = await serveKitchen({
      kitchen: k.dir,
      listen: "0.0.0.0:0",
      agentUrl: `https://${gateway}`,
      settings: { runIntervalMs: 3000, splayMs: 500 },
      log: () => {},
    });
    env = await loginTo(server, k.dir);
  });
  after(async () => {
    await server?.close();
    k?.down();
  });

  test("stack up through the server: app2's agent installed, enrolled and connected; every app instance serves", async () => {
    const up = await galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-3000));
    const online = up.out.instances.filter((i: { status: string }) => i.status === "online");
    assert.equal(online.length, 5, JSON.stringify(up.out.instances));
    const admin = (await fs.readFile(server.adminTokenFile, "utf8")).trim();
    const agents = await call(server, "GET", "/v1/agents?stack=webapp", { token: admin });
    assert.deepEqual(
      (agents.json as { agents: { instance: string; connected: boolean; generation: number }[] }).agents.map(
        (a) => [a.instance, a.connected, a.generation],
      ),
      [["app2", true, 1]],
    );
    const served = await k.served();
    assert.equal(new Set(served.values()).size, 1, JSON.stringify([...served]));
  });

  test("a rolling deploy switches the SSH instances and the agent instance in one deployment", async () => {
    const revision = (await k.newRevision((source) => `${source}// through an agent too\n`)).slice(0, 7);
    const deployed = await galley("deploy", "hello", "--stack", "webapp", "--strategy", "rolling");
    assert.equal(deployed.code, 0, deployed.stderr.slice(-3000));
    assert.equal(deployed.out.deployment.status, "succeeded");
    const served = await k.served();
    assert.deepEqual(
      [...served],
      webappApps.map((name) => [name, revision]),
    );
  });

  test("app2's agent repeats its configure as drift runs; the server stores them per instance", async () => {
    let runs: { kind: string; status: string }[] = [];
    const until = Date.now() + 120_000;
    while (Date.now() < until) {
      const listed = await galley("instance", "runs", "app2", "--stack", "webapp");
      assert.equal(listed.code, 0, listed.stderr);
      runs = listed.out.runs;
      if (runs.some((r) => r.kind === "drift")) break;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const drift = runs.find((r) => r.kind === "drift");
    assert.ok(drift, `no drift run in ${JSON.stringify(runs)}`);
    assert.equal(drift.status, "ok", "the configure it repeats changes nothing");
  });
});
