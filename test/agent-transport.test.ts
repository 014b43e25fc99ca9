import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { deploy } from "../src/deploy/controller.ts";
import { openStack, type StackContext } from "../src/lifecycle/context.ts";
import { Lifecycle } from "../src/lifecycle/lifecycle.ts";
import { tempDir } from "../src/resources/testing.ts";
import { type AgentServer, startAgentServer } from "./support/agent-server.ts";
import { cli } from "./support/cli.ts";

// `transport: agent` end to end on real container hosts: a stack of two app instances, app1 over
// SSH and app2 managed by its agent. Starting app2 installs Galley and its agent over SSH, enrolls
// it with a real server (HTTPS with its own CA, the real agent hub and channel) and waits for it;
// setup, configure and deployments then reach it through the agent, beside app1 over SSH, with one
// rollout controller.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: the instances are container hosts";

const stackYaml = `name: mixed
cookbooks: ../cookbooks.yaml
layers:
  - name: app
    recipes: { setup: [web::setup], configure: [web::configure] }
instances:
  - { name: app1, layers: [app], provider: { type: container, init: sysv } }
  - { name: app2, layers: [app], provider: { type: container, init: sysv }, transport: agent }
apps:
  - name: hello
    layers: [app]
    source: { type: archive, url: ../hello.tar.gz }
    release: { deploy_to: /srv, keep: 3 }
`;

const recipes = {
  setup: `export default (r) => r.file("/etc/galley-setup", { content: "set up on " + r.stack.instance.name + "\\n" });\n`,
  configure: `export default (r) => r.file("/etc/galley-peers", { content: r.stack.online().map((i) => i.name).join(",") + "\\n" });\n`,
};

describe("transport: agent on container hosts, through a server", { skip, timeout: 1_200_000 }, () => {
  let kitchen = "";
  let context: StackContext | undefined;
  let server: AgentServer | undefined;
  // read on the host: a release's `current` is an absolute link there
  const read = (name: string, file: string) => {
    const result = cli(["hosts", "exec", name, "--", "cat", `/${file}`], kitchen);
    assert.equal(result.code, 0, `${name}: cat /${file}: ${result.stderr}`);
    return result.stdout;
  };
  const archive = async (text: string) => {
    const app = path.join(kitchen, "app");
    await fs.mkdir(app, { recursive: true });
    await fs.writeFile(path.join(app, "index.txt"), `${text}\n`);
    execFileSync("tar", ["-czf", path.join(kitchen, "hello.tar.gz"), "-C", app, "."]);
  };
  const deployed = async () => {
    const result = await deploy({ context: context!, app: "hello", strategy: "cutover", params: {} });
    assert.equal(result.status, "succeeded", JSON.stringify(result, null, 2).slice(0, 4000));
    return result;
  };

  before(async () => {
    kitchen = await tempDir("galley-agent-transport-");
    const cache = path.join(kitchen, ".galley", "test-cache");
    process.env.GALLEY_CACHE_DIR = cache;
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks", "web", "recipes"), { recursive: true });
    await fs.writeFile(
      path.join(kitchen, "cookbooks", "web", "cookbook.yaml"),
      "name: web\nversion: 1.0.0\n",
    );
    for (const [name, text] of Object.entries(recipes))
      await fs.writeFile(path.join(kitchen, "cookbooks", "web", "recipes", `${name}.ts`), text);
    await fs.writeFile(
      path.join(kitchen, "cookbooks.yaml"),
      "cookbooks:\n  web: { path: ./cookbooks/web }\n",
    );
    const installed = cli(["cookbooks", "install"], kitchen, { GALLEY_CACHE_DIR: cache });
    assert.equal(installed.code, 0, installed.stderr);
    await fs.writeFile(path.join(kitchen, "stacks", "mixed.yaml"), stackYaml);
    await archive("one");
    const opened = await openStack(path.join(kitchen, "stacks", "mixed.yaml"));
    const agents = await startAgentServer(opened.store, path.join(kitchen, ".galley", "test-server"), cache);
    server = agents;
    context = {
      ...opened,
      agents: agents.hub,
      agentEnrollment: async (target) => {
        const address = (await opened.store.getInstance(target.stack, target.instance))?.address;
        assert.ok(address, `${target.instance} has an address`);
        return { serverUrl: agents.urlFor(address), token: await agents.mint(target) };
      },
    };
  });
  after(async () => {
    await server?.close();
    await context?.store.close();
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("stack up: app2's agent is installed, enrolled and connected; setup and configure reach it", async () => {
    const lines: string[] = [];
    const lifecycle = await Lifecycle.open(context!, { log: (line) => lines.push(line) });
    await lifecycle.up();
    assert.deepEqual(lifecycle.failedStarts, [], lines.join("\n"));
    for (const name of ["app1", "app2"]) assert.equal(await lifecycle.status(name), "online", name);
    assert.ok(server!.hub.connected({ stack: "mixed", instance: "app2" }));
    assert.ok(!server!.hub.connected({ stack: "mixed", instance: "app1" }));
    const [agent] = await context!.store.listAgents("mixed");
    assert.deepEqual([agent?.instance, agent?.generation], ["app2", 1]);
    // setup ran on both, app2's through its agent: its outcome carries the bundle id it fetched
    assert.equal(read("app2", "etc/galley-setup"), "set up on app2\n");
    assert.equal(read("app1", "etc/galley-setup"), "set up on app1\n");
    const setup = lifecycle.events.find((e) => e.event.kind === "setup" && e.results.has("app2"))!;
    const outcome = setup.results.get("app2")!.outcome!;
    assert.equal(outcome.status, "ok", JSON.stringify(outcome));
    assert.ok("report" in outcome && /^[0-9a-f]{64}$/.test(outcome.report.bundle ?? ""));
    // configure saw both online, on both
    for (const name of ["app1", "app2"]) assert.equal(read(name, "etc/galley-peers"), "app1,app2\n", name);
  });

  test("deployments switch SSH and agent instances alike, in one rollout", async () => {
    await deployed();
    for (const name of ["app1", "app2"])
      assert.equal(read(name, "srv/hello/current/index.txt"), "one\n", name);
    await archive("two");
    const result = await deployed();
    const steps = result.steps.filter((s) => s.phase === "switch");
    assert.deepEqual(steps.map((s) => [s.instance, s.status]).sort(), [
      ["app1", "succeeded"],
      ["app2", "succeeded"],
    ]);
    for (const name of ["app1", "app2"])
      assert.equal(read(name, "srv/hello/current/index.txt"), "two\n", name);
  });

  test("without the server's agents, app2 is unreachable with the way to reach it; app1 still runs", async () => {
    const { agents: _, agentEnrollment: __, ...bare } = context!;
    const lifecycle = await Lifecycle.open(bare);
    const summary = await lifecycle.run("configure", {});
    assert.equal(summary.results.get("app1")!.status, "succeeded");
    const lost = summary.results.get("app2")!;
    assert.equal(lost.status, "connection_lost");
    assert.match(JSON.stringify(lost.outcome), /managed by an agent.*galley server/);
    // put app2 back: configure through the server
    const again = await Lifecycle.open(context!);
    await again.start(["app2"]);
    assert.deepEqual(again.failedStarts, []);
    assert.equal(await again.status("app2"), "online");
    // its start deployed the pinned release through the agent
    assert.equal(read("app2", "srv/hello/current/index.txt"), "two\n");
    // started again, it kept its enrollment: the same generation, no new one
    assert.equal((await context!.store.getAgent("mixed", "app2"))?.generation, 1);
  });
});
