import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { loadBalancers } from "../src/deploy/lb/index.ts";
import { SshHost } from "../src/hosts/ssh.ts";
import { containerProvider } from "../src/providers/container/provider.ts";
import { tempDir } from "../src/resources/testing.ts";
import { hacli, reloadScript, statesScript } from "../examples/webapp/cookbooks/lb/recipes/admin.ts";
import { cli } from "./support/cli.ts";
import { type Load, startLoad } from "./support/load.ts";

// Draining an app instance through HAProxy under load, on container hosts: examples/webapp's lb
// and app cookbooks, HAProxy in front of app1 and app2 (app3 joins later). The test plays the
// rollout controller: it marks app1 out of service with the stack attribute `lb.out_of_service`
// (what the stack state's `inService: false` will do) and runs lb::configure on the lb layer.
// Load runs through HAProxy the whole time; not one request may fail.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const socket = "/run/haproxy/admin.sock";
const stateFile = "/var/lib/haproxy/server-state";
const example = fileURLToPath(new URL("../examples/webapp", import.meta.url));

/** The stack file, with `lb.out_of_service` set to `drained`. */
function stackFile(drained: string[]): string {
  const layer = (name: string, packages: string[], recipes: Record<string, string[]>) => ({
    name,
    packages,
    recipes,
  });
  const container = { type: "container", init: "systemd" };
  return JSON.stringify({
    name: "lbdrain",
    cookbooks: "../cookbooks",
    attributes: {
      db: { name: "hello", user: "hello", password: "example-only-not-a-secret" },
      lb: { out_of_service: drained },
    },
    layers: [
      layer("lb", ["haproxy"], { setup: ["lb::setup"], configure: ["lb::configure"] }),
      layer("app", ["nodejs", "git"], {
        setup: ["app::setup"],
        deploy: ["app::deploy"],
        configure: ["app::configure"],
      }),
      // no instance: the app recipes ask for the db layer's online instances (none: DB_HOST empty)
      layer("db", [], {}),
    ],
    instances: [
      { name: "lb1", layers: ["lb"], provider: container },
      { name: "app1", layers: ["app"], provider: container },
      { name: "app2", layers: ["app"], provider: container },
      // load-based: stopped until the test starts it, a backend joining (the config changes: a reload)
      {
        name: "app3",
        layers: ["app"],
        provider: container,
        scaling: { type: "load" },
      },
    ],
    apps: [
      {
        name: "hello",
        layers: ["app"],
        source: { type: "git", url: "../.galley/app.git", revision: "main" },
        environment: { PORT: "3000" },
      },
    ],
  });
}

interface RunJson {
  events: { outcomes: Record<string, { status: string; summary?: { changed: number } }> }[];
}

describe("draining an app instance through HAProxy under load", { skip }, () => {
  let kitchen = "";
  let lbHost: SshHost | undefined;
  let load: Load | undefined;
  let url = "";

  const galley = (...args: string[]) => {
    const result = cli([...args, "--json"], kitchen);
    assert.equal(
      result.code,
      0,
      `galley ${args.join(" ")}: ${result.stderr.slice(-4000)}${result.stdout.slice(-2000)}`,
    );
    return JSON.parse(result.stdout);
  };
  const setDrained = (drained: string[]) =>
    fs.writeFile(path.join(kitchen, "stacks", "lbdrain.yaml"), `${stackFile(drained)}\n`);
  /** lb::configure on lb1; how many resources it changed */
  const configureLb = (): number => {
    const run = galley("run-recipes", "lb::configure", "--stack", "lbdrain", "--layer", "lb") as RunJson;
    const outcome = run.events[0]?.outcomes.lb1;
    assert.equal(outcome?.status, "succeeded", JSON.stringify(run));
    return outcome.summary!.changed;
  };
  const states = () => loadBalancers.haproxy.states(lbHost!, "app");
  const served = (name: string) => load!.snapshot().byBody.get(name) ?? 0;
  /** waits (polling, up to `tries` × 0.2 s) until `ok` holds; fails with `what` */
  const until = async (what: string, ok: () => boolean | Promise<boolean>, tries = 300) => {
    for (let i = 0; i < tries; i++) {
      if (await ok()) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.fail(`${what} did not happen; load so far: ${JSON.stringify([...load!.snapshot().byBody])}`);
  };

  before(async () => {
    kitchen = await tempDir("galley-lbdrain-");
    await fs.cp(example, kitchen, { recursive: true, filter: (src) => !src.includes(`${path.sep}.galley`) });
    const repo = spawnSync("bash", [path.join(kitchen, "make-app-repo.sh")], { encoding: "utf8" });
    assert.equal(repo.status, 0, repo.stderr);
    await setDrained([]);
  });
  after(async () => {
    await load?.stop();
    await lbHost?.close();
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("stack up: HAProxy sends the load to app1 and app2; a second configure changes nothing", async () => {
    const up = galley("stack", "up", "lbdrain");
    const lb = (up.instances as { name: string; address: string }[]).find((i) => i.name === "lb1")!;
    url = `http://${lb.address}/`;
    const reached = await containerProvider.reach(
      { file: path.join(kitchen, "stacks", "lbdrain.yaml"), kitchen },
      [{ name: "lb1", provider: { type: "container" } }],
    );
    const lb1 = reached.get("lb1");
    assert.ok(lb1?.ok, JSON.stringify(lb1));
    lbHost = await SshHost.connect(lb1.target);

    load = startLoad({ url, byBody: /hello from (\S+)/, connections: 8, rate: 300 });
    await until("both app instances answering", () => served("app1") > 20 && served("app2") > 20);
    assert.equal(configureLb(), 0);
    const servers = await states();
    assert.deepEqual([...servers.keys()], ["app1", "app2"]);
    for (const server of servers.values()) assert.equal(server.up, true, JSON.stringify(server));
  });

  test("app1 out of service: HAProxy drains it without a reload, no request reaches it after", async () => {
    await setDrained(["app1"]);
    assert.ok(configureLb() > 0, "the drain changed something");
    assert.equal(configureLb(), 0, "a second run with the same states changes nothing");
    await until("HAProxy reporting app1 drained", async () => (await states()).get("app1")?.drained === true);
    const servers = await states();
    assert.equal(servers.get("app1")?.admin, "drain");
    assert.equal(servers.get("app1")?.up, false);
    assert.equal(servers.get("app2")?.up, true);
    const before = served("app1");
    const total = load!.snapshot().requests;
    await until("500 more requests", () => load!.snapshot().requests > total + 500);
    assert.equal(served("app1"), before, "no request reached app1 once it was drained");
  });

  test("app3 joins (a reload of HAProxy): app1 stays drained, app3 serves", async () => {
    const before = served("app1");
    galley("instance", "start", "app3", "--stack", "lbdrain");
    await until("app3 answering through HAProxy", () => served("app3") > 20);
    const servers = await states();
    assert.deepEqual([...servers.keys()].sort(), ["app1", "app2", "app3"]);
    const seen = JSON.stringify([...servers.values()]) + ` app1 served ${before} -> ${served("app1")}`;
    assert.equal(servers.get("app1")?.admin, "drain", seen);
    assert.equal(served("app1"), before, `no request reached app1 across the reload: ${seen}`);
    assert.equal(servers.get("app1")?.drained, true, seen);
    assert.equal(servers.get("app3")?.up, true, seen);
    assert.equal(configureLb(), 0, "after the reload every state already matches");

    // the reload on its own (no runtime step after it) keeps the drain: the new worker loads it
    const pid = async () =>
      /^Pid: (\d+)$/m.exec(
        (await lbHost!.exec(["sh", "-c", `${hacli} hacli "$1" "show info"`, "sh", socket])).stdout,
      )?.[1];
    const worker = await pid();
    const reload = await lbHost!.exec([
      "sh",
      "-c",
      reloadScript,
      "sh",
      socket,
      "/var/lib/haproxy/server-state",
    ]);
    assert.equal(reload.exitCode, 0, reload.stderr);
    assert.notEqual(await pid(), worker, "a new worker runs");
    const reloaded = await states();
    assert.equal(reloaded.get("app1")?.admin, "drain", JSON.stringify([...reloaded.values()]));
    assert.equal(reloaded.get("app2")?.admin, "ready");
    const total = load!.snapshot().requests;
    await until("500 more requests", () => load!.snapshot().requests > total + 500);
    assert.equal(served("app1"), before, "no request reached app1 across a bare reload");
  });

  test("app1 back in service: it serves again; the load saw no error and no non-2xx", async (t) => {
    await setDrained([]);
    assert.ok(configureLb() > 0);
    const before = served("app1");
    await until("app1 answering again", () => served("app1") > before + 20);
    const servers = await states();
    for (const server of servers.values()) assert.equal(server.up, true, JSON.stringify(server));
    const result = await load!.stop();
    load = undefined;
    t.diagnostic(`load: ${result.requests} responses, by backend ${JSON.stringify([...result.byBody])}`);
    assert.ok(result.requests > 1000, `${result.requests} requests`);
    assert.equal(result.errors, 0, result.samples.join("\n"));
    assert.equal(result.non2xx, 0, result.samples.join("\n"));
    assert.equal(result.byBody.get("(none)"), undefined);
  });

  test("HAProxy restarted: its saved states come back, and the runtime step waits for the socket", async () => {
    // no load from here: a restart (unlike a reload) drops connections
    await setDrained(["app2"]);
    assert.ok(configureLb() > 0);
    const exec = async (argv: string[]) => {
      const result = await lbHost!.exec(argv);
      assert.equal(result.exitCode, 0, `${argv.join(" ")}: ${result.stderr}`);
    };
    await exec(["systemctl", "stop", "haproxy"]);
    // asked while HAProxy is down; it answers once HAProxy is back, with the states it loaded
    const wanted = ["app1=ready", "app2=drain", "app3=ready"];
    const check = lbHost!.exec([
      "sh",
      "-c",
      statesScript,
      "sh",
      "check",
      socket,
      stateFile,
      "app",
      ...wanted,
    ]);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await exec(["systemctl", "start", "haproxy"]);
    const checked = await check;
    assert.equal(checked.exitCode, 0, `the states after the restart: ${checked.stdout}${checked.stderr}`);
    const servers = await states();
    assert.equal(servers.get("app2")?.admin, "drain", JSON.stringify([...servers.values()]));
    assert.equal(servers.get("app1")?.admin, "ready");
    assert.equal(configureLb(), 0, "nothing to set after the restart");
  });
});
