import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { openStack, type StackContext } from "../src/lifecycle/context.ts";
import { Lifecycle } from "../src/lifecycle/lifecycle.ts";
import { onHosts } from "../src/providers/container/index.ts";
import { containerProvider } from "../src/providers/container/provider.ts";
import { tempDir } from "../src/resources/testing.ts";
import { openServedStack } from "../src/server/routes/stacks.ts";
import { serveKitchen } from "../src/server/serve.ts";
import type { RunningServer } from "../src/server/server.ts";
import type { Store } from "../src/store/store.ts";
import { cliAsync } from "./support/cli.ts";

// Healing and partitions with REAL agents on real container hosts, in the whole server
// (serveKitchen: the hub, the API, the automation) with short intervals (keepalives of 1 s, 3
// missed = lost, a scheduler tick every 500 ms). A stack of three agent instances in a layer with
// auto_healing; its configure writes the online instances to /etc/heal-peers and leaves a marker
// /etc/heal-seen.<names> per distinct set, so that every configure a host went through stays
// visible on it. A killed host is connection_lost, the rest are configured without it, and it is
// replaced (stop, start: its host booted again on its disk, its agent connected with its enrollment,
// setup, configure everywhere); a host lost with its disk is replaced by a new host whose agent is
// shipped and enrolled again (generation 2).
// Two of three cut at once is a partition: nothing is replaced; once their links are back, their
// agents reconnect by themselves with their enrollment (same generation) and the stack is whole.
// Every wait is for an outcome (store, audit, files on the hosts), with a generous deadline; the
// subprocesses run asynchronously so that the in-process server keeps its keepalives.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: the instances are container hosts";
const deadlineMs = 180_000;
const names = ["heal1", "heal2", "heal3"] as const;
const stackName = "heal";

const stackYaml = `name: ${stackName}
cookbooks: ../cookbooks.yaml
layers:
  - name: web
    auto_healing: true
    recipes: { setup: [lab::setup], configure: [lab::configure] }
instances:
${names.map((n) => `  - { name: ${n}, layers: [web], provider: { type: container, init: sysv }, transport: agent }`).join("\n")}
`;

const recipes: Record<string, string> = {
  // a setup's own stamp: a setup run again leaves another
  "setup.ts": `export default (r) => r.file("/etc/heal-setup", { content: r.stack.instance.name + " " + new Date().toISOString() + "\\n" });\n`,
  "configure.ts": `export default (r) => {
  const names = r.stack.online().map((i) => i.name);
  r.file("/etc/heal-peers", { content: names.join(",") + "\\n" });
  r.file("/etc/heal-seen." + names.join("-"), { content: "\\n" });
};
`,
};

const logs: string[] = [];

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > until)
      assert.fail(`not within ${deadlineMs / 1000} s: ${what}\n${logs.slice(-80).join("\n")}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

describe("healing and partitions with real agents on container hosts", { skip, timeout: 1_500_000 }, () => {
  let kitchen = "";
  let server: RunningServer | undefined;
  let store: Store | undefined;
  // each test builds on the one before: none runs after one failed
  let failed = false;
  const step = (fn: () => Promise<void>) => async () => {
    assert.ok(!failed, "an earlier step failed");
    try {
      await fn();
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  const status = async (name: string) => (await store!.getInstance(stackName, name))?.status;
  const generation = async (name: string) => (await store!.getAgent(stackName, name))?.generation;
  const healerAudit = async () =>
    (await store!.listAudit({ stack: stackName, limit: 1000 })).filter((e) => e.actor === "system:healer");
  const galley = async (args: string[]) => {
    const result = await cliAsync(args, kitchen);
    assert.equal(result.code, 0, `galley ${args.join(" ")}: ${result.stderr}`);
    return result.stdout;
  };
  const peers = async (name: string) => {
    const result = await cliAsync(["hosts", "exec", name, "--", "cat", "/etc/heal-peers"], kitchen);
    return result.code === 0 ? result.stdout.trim() : `(${result.stderr.trim()})`;
  };
  const seen = async (name: string) =>
    (await galley(["hosts", "exec", name, "--", "ls", "/etc"]))
      .split("\n")
      .filter((f) => f.startsWith("heal-seen."))
      .map((f) => f.slice("heal-seen.".length));
  const hostList = async () =>
    (
      JSON.parse(await galley(["hosts", "list", "--json"])) as {
        hosts: { name: string; pid?: number; status: string; cut: boolean }[];
      }
    ).hosts;
  const everyoneConfigured = async (expected: string) => {
    for (const name of names) if ((await peers(name)) !== expected) return false;
    return true;
  };

  before(async () => {
    kitchen = await tempDir("galley-agent-healing-");
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks/lab/recipes"), { recursive: true });
    await fs.writeFile(path.join(kitchen, "cookbooks/lab/cookbook.yaml"), "name: lab\nversion: 1.0.0\n");
    for (const [file, text] of Object.entries(recipes))
      await fs.writeFile(path.join(kitchen, "cookbooks/lab/recipes", file), text);
    await fs.writeFile(path.join(kitchen, "stacks", `${stackName}.yaml`), stackYaml);
    // agent instances need a locked kitchen
    await fs.writeFile(
      path.join(kitchen, "cookbooks.yaml"),
      "cookbooks:\n  lab: { path: ./cookbooks/lab }\n",
    );
    const installed = await cliAsync(["cookbooks", "install"], kitchen, {
      GALLEY_CACHE_DIR: path.join(kitchen, ".galley", "test-cache"),
    });
    assert.equal(installed.code, 0, installed.stderr);
    // the hosts first: the server's certificate names the bridge gateway its agents reach it at
    const opened = await openStack(path.join(kitchen, "stacks", `${stackName}.yaml`));
    let gateway = "";
    try {
      const hosts = await containerProvider.provision(
        { kitchen } as StackContext,
        names.map((name) => ({ name, provider: { type: "container" as const, init: "sysv" as const } })),
        () => {},
      );
      const first = hosts.get("heal1")!;
      assert.ok(first.ok, first.ok ? "" : first.error);
      gateway = first.address.replace(/\.\d+$/, ".1");
    } finally {
      await opened.store.close();
    }
    server = await serveKitchen({
      kitchen,
      listen: "0.0.0.0:0",
      sans: [gateway],
      agentUrl: `https://${gateway}`,
      settings: { keepaliveMs: 1000, missedKeepalives: 3, schedulerMs: 500 },
      log: (line) => logs.push(line),
    });
    store = server.ctx.store;
  });
  after(async () => {
    await server?.close();
    if (kitchen) {
      const down = await cliAsync(["hosts", "down"], kitchen);
      assert.equal(down.code, 0, down.stderr);
    }
  });

  test(
    "stack up through the server: three agents enrolled and connected, each configured with all three",
    step(async () => {
      const context = await openServedStack(server!.ctx, stackName);
      try {
        const lifecycle = await Lifecycle.open(context, { log: (line) => logs.push(line) });
        await lifecycle.up();
        await lifecycle.idle();
        const why = JSON.stringify(
          lifecycle.events.map((e) => [e.event.kind, e.event.status, Object.fromEntries(e.results)]),
          null,
          1,
        ).slice(-6000);
        assert.deepEqual(lifecycle.failedStarts, [], `${logs.slice(-40).join("\n")}\n${why}`);
      } finally {
        await context.store.close();
      }
      for (const name of names) {
        assert.equal(await status(name), "online", name);
        assert.ok(server!.ctx.agents.connected({ stack: stackName, instance: name }), `${name} connected`);
        assert.equal(await generation(name), 1, name);
      }
      await eventually(() => everyoneConfigured("heal1,heal2,heal3"), "every host configured with all three");
    }),
  );

  test(
    "a killed host: connection_lost, the rest configured without it, then replaced and configured with it again",
    step(async () => {
      const before = (await hostList()).find((h) => h.name === "heal2");
      assert.equal(before?.status, "running");
      const setupBefore = await galley(["hosts", "exec", "heal2", "--", "cat", "/etc/heal-setup"]);
      assert.match(setupBefore, /^heal2 /);
      await galley(["hosts", "kill", "heal2"]);

      await eventually(
        async () => (await healerAudit()).some((e) => e.action === "heal.replace" && e.target === "heal2"),
        "heal2's replacement decided",
      );
      const audit = await healerAudit();
      const lost = audit.find((e) => e.action === "instance.connection_lost" && e.target === "heal2");
      assert.match(lost?.reason ?? "", /its agent went silent: missed 3 keepalives/);
      const replace = audit.find((e) => e.action === "heal.replace" && e.target === "heal2")!;
      assert.match(replace.reason!, /did not come back within \d+ s; layer web has auto_healing/);
      assert.ok(lost!.id < replace.id, "lost, then replaced");
      assert.ok(!audit.some((e) => e.action === "heal.skipped"), "no partition with one of three lost");

      // the replacement: stopped, started again (its host booted, its agent connected), online
      await eventually(async () => (await status("heal2")) === "online", "heal2 online again");
      const history = (await store!.statusHistory(stackName, "heal2")).map((t) => t.to);
      const since = history.slice(history.lastIndexOf("connection_lost"));
      assert.deepEqual(since, [
        "connection_lost",
        "stopping",
        "shutting_down",
        "stopped",
        "requested",
        "booting",
        "running_setup",
        "online",
      ]);
      const after = (await hostList()).find((h) => h.name === "heal2");
      assert.equal(after?.status, "running");
      assert.notEqual(after?.pid, before?.pid, "heal2's host booted again (a new PID 1)");
      assert.ok(
        server!.ctx.agents.connected({ stack: stackName, instance: "heal2" }),
        "heal2's agent is back",
      );
      // setup ran again through its agent on the booted host
      const setupAfter = await galley(["hosts", "exec", "heal2", "--", "cat", "/etc/heal-setup"]);
      assert.match(setupAfter, /^heal2 /);
      assert.notEqual(setupAfter, setupBefore, "setup ran again on heal2");

      // everyone is configured with it again; the two others were configured without it meanwhile
      await eventually(
        () => everyoneConfigured("heal1,heal2,heal3"),
        "every host configured with heal2 again",
      );
      for (const name of ["heal1", "heal3"]) {
        assert.ok((await seen(name)).includes("heal1-heal3"), `${name} was configured without heal2`);
      }
      // the container provider's stop keeps a host's disk: the booted host's agent kept its enrollment
      assert.equal(await generation("heal2"), 1, "heal2's agent was not enrolled again");
    }),
  );

  test(
    "a host lost with its disk: replaced by a new host, its agent installed and enrolled again (generation 2)",
    step(async () => {
      await eventually(async () => {
        for (const name of names) if ((await status(name)) !== "online") return false;
        return names.every((name) => server!.ctx.agents.connected({ stack: stackName, instance: name }));
      }, "all three online and connected");
      const mark = (await healerAudit())[0]?.id ?? 0;
      // a power cut, then the machine's remains are gone (disk, namespace): back to back in this
      // process, long before the healer's decision (3 missed keepalives, then its window)
      await onHosts(kitchen, "kill", ["heal3"], () => {});
      await onHosts(kitchen, "destroy", ["heal3"], () => {});
      assert.equal(
        (await hostList()).find((h) => h.name === "heal3"),
        undefined,
        "heal3's host is gone",
      );

      await eventually(
        async () =>
          (await healerAudit()).some(
            (e) => e.id > mark && e.action === "heal.replace" && e.target === "heal3",
          ),
        "heal3's replacement decided",
      );
      const lost = (await healerAudit()).find(
        (e) => e.id > mark && e.action === "instance.connection_lost" && e.target === "heal3",
      );
      assert.match(lost?.reason ?? "", /its agent went silent: missed 3 keepalives/);
      await eventually(async () => (await status("heal3")) === "online", "heal3 online on a new host");
      assert.equal((await hostList()).find((h) => h.name === "heal3")?.status, "running", "a new heal3 host");
      // the new host's agent: shipped, enrolled with a new key (generation 2), connected
      const agent = await store!.getAgent(stackName, "heal3");
      assert.equal(agent?.generation, 2);
      assert.ok(server!.ctx.agents.connected({ stack: stackName, instance: "heal3" }));
      assert.match(await galley(["hosts", "exec", "heal3", "--", "cat", "/etc/heal-setup"]), /^heal3 /);
      await eventually(
        () => everyoneConfigured("heal1,heal2,heal3"),
        "every host configured with the new heal3",
      );
      for (const name of ["heal1", "heal2"])
        assert.ok((await seen(name)).includes("heal1-heal2"), `${name} was configured without heal3`);
      // the new host saw only the whole stack
      assert.deepEqual(await seen("heal3"), ["heal1-heal2-heal3"]);
      // one replacement: the new host came once
      const replaced = (await healerAudit()).filter((e) => e.id > mark && e.action === "heal.replace");
      assert.deepEqual(
        replaced.map((e) => e.target),
        ["heal3"],
      );
    }),
  );

  test(
    "two of three cut at once: a partition, nothing replaced; links back: agents reconnect with their enrollment",
    step(async () => {
      // the replacement's configure has ended: the stack is quiet
      await eventually(async () => {
        for (const name of names) if ((await status(name)) !== "online") return false;
        return names.every((name) => server!.ctx.agents.connected({ stack: stackName, instance: name }));
      }, "all three online and connected");
      const generations = await Promise.all(names.map(generation));
      const replacementsBefore = (await healerAudit()).filter((e) => e.action === "heal.replace").length;
      const mark = (await healerAudit())[0]?.id ?? 0;

      await galley(["hosts", "cut", "heal1", "heal3"]);
      await eventually(
        async () =>
          (await healerAudit()).some(
            (e) => e.id > mark && e.action === "heal.skipped" && /^partition:/.test(e.reason ?? ""),
          ),
        "a partition recorded",
      );
      const partition = (await healerAudit()).filter(
        (e) => e.id > mark && e.action === "heal.skipped" && /^partition:/.test(e.reason ?? ""),
      );
      assert.deepEqual(partition.map((e) => e.target).sort(), ["heal1", "heal3"]);
      assert.match(
        partition[0]!.reason!,
        /^partition: 2 of 3 agents \(67%\) went silent .*nothing is healed/,
      );
      for (const name of ["heal1", "heal3"]) assert.equal(await status(name), "connection_lost", name);
      // heal2, the one left, is configured without them
      await eventually(async () => (await peers("heal2")) === "heal2", "heal2 configured alone");

      // the healer had its window (2 keepalives) many times over, its loop ticked every 500 ms: nothing replaced
      const logMark = logs.length;
      await new Promise((resolve) => setTimeout(resolve, 10_000));
      const audit = await healerAudit();
      assert.equal(audit.filter((e) => e.action === "heal.replace").length, replacementsBefore);
      for (const name of ["heal1", "heal3"]) assert.equal(await status(name), "connection_lost", name);
      assert.ok(!logs.slice(logMark).some((line) => /replacing/.test(line)), "no replacement logged");

      await galley(["hosts", "connect", "heal1", "heal3"]);
      await eventually(
        async () =>
          (await status("heal1")) === "online" &&
          (await status("heal3")) === "online" &&
          server!.ctx.agents.connected({ stack: stackName, instance: "heal1" }) &&
          server!.ctx.agents.connected({ stack: stackName, instance: "heal3" }),
        "heal1 and heal3 back online, their agents connected",
      );
      // no re-enrollment: the same keys, the same generations
      assert.deepEqual(await Promise.all(names.map(generation)), generations);
      const back = (await healerAudit()).filter((e) => e.id > mark && e.action === "instance.online");
      assert.deepEqual(back.map((e) => e.target).sort(), ["heal1", "heal3"]);
      await eventually(
        () => everyoneConfigured("heal1,heal2,heal3"),
        "every host configured with all three again",
      );
      assert.equal(
        (await healerAudit()).filter((e) => e.action === "heal.replace").length,
        replacementsBefore,
        "still no replacement",
      );
    }),
  );
});
