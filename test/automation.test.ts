import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { zonedHour } from "../src/lifecycle/scaling.ts";
import { tempDir } from "../src/resources/testing.ts";
import { createAgentHub } from "../src/server/agents/hub.ts";
import { enrolled, TestAgent } from "../src/server/agents/testing.ts";
import { startAutomation } from "../src/server/automation/automation.ts";
import { type RunningServer, startServer } from "../src/server/server.ts";
import { loadStack } from "../src/stacks/stack.ts";
import type { Store } from "../src/store/store.ts";
import { cli } from "./support/cli.ts";

// The server's automation on real hosts (galley container hosts, sysv: they boot in a fraction of
// a second, SSH transport), in a real `galley server` (HTTPS, its CA, the agent hub, the kitchen's
// store) with the automation as its service: the scheduler starts a time-based instance whose
// slot began and stops it when its slot ends; the healer replaces an instance whose agent (a real
// channel to the server) went silent. Intervals are shortened: a scheduler tick every second,
// keepalives of 300 ms.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const deadlineMs = 180_000;
const zone = "Europe/Paris";
const weekdays = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];

// the slot of now (this hour and the next, in Paris), or one that excludes today
function schedule(inSlot: boolean): string {
  const { day, hour } = zonedHour(new Date(), zone);
  if (!inSlot) return `{ ${weekdays[(weekdays.indexOf(day) + 3) % 7]}: [${hour}] }`;
  if (hour < 23) return `{ ${day}: [${hour}, ${hour + 1}] }`;
  return `{ ${day}: [23], ${weekdays[(weekdays.indexOf(day) + 1) % 7]}: [0] }`;
}

const stackYaml = (inSlot: boolean, loadBased = false) => `name: auto
cookbooks: ../cookbooks
layers:
  - name: web
    auto_healing: true
    recipes: { setup: [lab::setup], configure: [lab::configure] }
${loadBased ? "    load_based: { up: { cpu: 80, wait_minutes: 1, ignore_minutes: 0 }, down: { cpu: 20, wait_minutes: 1, ignore_minutes: 0 } }\n" : ""}instances:
  - { name: auto-web1, layers: [web], provider: { type: container, init: sysv } }
  - name: auto-day1
    layers: [web]
    provider: { type: container, init: sysv }
    scaling: { type: time, schedule: ${schedule(inSlot)}, timezone: ${zone} }
${loadBased ? "  - { name: auto-load1, layers: [web], provider: { type: container, init: sysv }, scaling: { type: load } }\n" : ""}`;

const recipes: Record<string, string> = {
  "setup.ts": `export default function (r) {
  r.file("/etc/auto-setup", { content: \`\${r.stack.instance.name}\\n\` });
}
`,
  "configure.ts": `export default function (r) {
  r.file("/etc/auto-peers", { content: r.stack.online("web").map((i) => i.name).join("\\n") + "\\n" });
}
`,
};

// the automation's log lines, shown when a wait fails
const logs: string[] = [];

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until) assert.fail(`not within ${deadlineMs / 1000} s: ${what}\n${logs.join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe("server automation on container hosts", { skip }, () => {
  let kitchen = "";
  let server: RunningServer | undefined;
  let store: Store | undefined;
  // an agent's keepalives and metrics: running until the server is closed (else the healer would see it go)
  let reporting: NodeJS.Timeout | undefined;
  const status = async (name: string) => (await store!.getInstance("auto", name))?.status;
  const history = async (name: string) => (await store!.statusHistory("auto", name)).map((t) => t.to);
  const audit = async () => store!.listAudit({ stack: "auto", outcome: "auto" });

  before(async () => {
    kitchen = await tempDir("galley-automation-");
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks/lab/recipes"), { recursive: true });
    await fs.writeFile(path.join(kitchen, "stacks/auto.yaml"), stackYaml(true));
    await fs.writeFile(path.join(kitchen, "cookbooks/lab/cookbook.yaml"), "name: lab\nversion: 1.0.0\n");
    for (const [file, text] of Object.entries(recipes))
      await fs.writeFile(path.join(kitchen, "cookbooks/lab/recipes", file), text);
    // the 24/7 instance, started by hand: the stack is in the store as applied
    const start = cli(["instance", "start", "auto-web1", "--stack", "auto"], kitchen);
    assert.equal(start.code, 0, start.stderr);
    server = await startServer({
      kitchen,
      // agents report metrics every 10 s: a 1-minute load threshold needs 50 s of samples to hold
      settings: { keepaliveMs: 300, missedKeepalives: 3, schedulerMs: 1000, metricsMs: 10_000 },
      hub: (ctx) => createAgentHub(ctx),
      services: [startAutomation],
      log: (line) => logs.push(line),
    });
    store = server.ctx.store;
  });
  after(async () => {
    await server?.close();
    clearInterval(reporting);
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("the scheduler starts a time-based instance whose slot began, and stops it when its slot ends", async () => {
    await eventually(async () => (await status("auto-day1")) === "online", "auto-day1 online");
    // its start ends with a configure of every online instance
    await eventually(
      async () =>
        cli(["hosts", "exec", "auto-web1", "--", "cat", "/etc/auto-peers"], kitchen).stdout ===
        "auto-web1\nauto-day1\n",
      "auto-web1 configured with auto-day1",
    );
    const started = (await audit()).find((e) => e.actor === "system:scheduler" && e.target === "auto-day1");
    assert.equal(started?.action, "instance.start");
    assert.equal(started?.outcome, "auto");
    assert.match(started!.reason!, /its slot began: \w+ \d\d:00-\d\d:00 Europe\/Paris/);

    // the slot is set to end: the stack as applied no longer has this hour
    await fs.writeFile(path.join(kitchen, "stacks/auto.yaml"), stackYaml(false));
    const stack = await loadStack(path.join(kitchen, "stacks/auto.yaml"));
    await store!.saveStack("auto", stack);
    await eventually(async () => (await status("auto-day1")) === "stopped", "auto-day1 stopped");
    const stopped = (await audit()).find(
      (e) => e.actor === "system:scheduler" && e.action === "instance.stop",
    );
    assert.match(stopped!.reason!, /its slot ended/);
    assert.ok(logs.some((line) => line.startsWith("scheduler: auto/auto-day1: stop: its slot ended")));
  });

  test("the healer replaces an instance whose agent went silent (the real server, its hub and channel)", async () => {
    const key = await enrolled(store!, "auto", "auto-web1");
    const channelUrl = `wss://127.0.0.1:${server!.port}/v1/agents/channel`;
    const agent = await TestAgent.connect(
      { channelUrl, ca: server!.caPem },
      "auto",
      "auto-web1",
      key.privateKey,
    );
    assert.equal(agent.received.at(-1)?.type, "welcome");
    // alive for a while, then silent: its host "died"
    let seq = 0;
    const alive = setInterval(() => agent.send({ type: "keepalive", seq: ++seq }), 100);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    clearInterval(alive);
    await eventually(
      async () => (await audit()).some((e) => e.action === "heal.replace"),
      "a replacement decided",
    );
    const lost = (await store!.listAudit({ stack: "auto" })).find(
      (e) => e.action === "instance.connection_lost",
    );
    assert.match(lost!.reason!, /its agent went silent: missed 3 keepalives/);
    await eventually(async () => (await status("auto-web1")) === "online", "auto-web1 online again");
    const after = (await history("auto-web1")).slice((await history("auto-web1")).indexOf("connection_lost"));
    assert.deepEqual(after, [
      "connection_lost",
      "stopping",
      "shutting_down",
      "stopped",
      "requested",
      "booting",
      "running_setup",
      "online",
    ]);
    const setup = cli(["hosts", "exec", "auto-web1", "--", "cat", "/etc/auto-setup"], kitchen);
    assert.equal(setup.stdout, "auto-web1\n", "setup ran on the new host");
    agent.close();
  });

  test("the autoscaler starts a load instance when the layer's CPU holds above up, and stops it when it holds below down", async () => {
    await fs.writeFile(path.join(kitchen, "stacks/auto.yaml"), stackYaml(false, true));
    await store!.saveStack("auto", await loadStack(path.join(kitchen, "stacks/auto.yaml")));
    const key = await enrolled(store!, "auto", "auto-web1");
    const channelUrl = `wss://127.0.0.1:${server!.port}/v1/agents/channel`;
    const agent = await TestAgent.connect(
      { channelUrl, ca: server!.caPem },
      "auto",
      "auto-web1",
      key.privateKey,
    );
    // the agent keeps its keepalives and reports its CPU (busy, then idle) twice a second
    let cpu = 95;
    let seq = 0;
    reporting = setInterval(() => {
      agent.send({ type: "keepalive", seq: ++seq });
      agent.send({ type: "metrics", at: new Date().toISOString(), cpu, memory: 40, load: 0.5 });
    }, 500);
    {
      await eventually(async () => (await status("auto-load1")) === "online", "auto-load1 started on load");
      const up = (await audit()).find(
        (e) => e.actor === "system:autoscaler" && e.action === "instance.start",
      );
      assert.equal(up?.target, "auto-load1");
      assert.match(up!.reason!, /^layer web: average cpu 95% or more > 80% for 1 min over auto-web1/);
      cpu = 5;
      await eventually(
        async () => (await status("auto-load1")) === "stopped",
        "auto-load1 stopped when idle",
      );
      const down = (await audit()).find(
        (e) => e.actor === "system:autoscaler" && e.action === "instance.stop",
      );
      assert.equal(down?.target, "auto-load1");
      assert.match(down!.reason!, /average cpu [\d.]+% or less < 20% for 1 min over auto-web1, auto-load1/);
      // one start, one stop: no flapping
      assert.equal((await audit()).filter((e) => e.actor === "system:autoscaler").length, 2);
      assert.equal(await status("auto-web1"), "online", "the 24/7 instance is never stopped");
    }
  });
});
