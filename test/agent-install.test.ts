import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { transports } from "../src/hosts/transports.ts";
import type { SshTarget } from "../src/hosts/target.ts";
import { type AgentInstall, installAgent } from "../src/lifecycle/agent-install.ts";
import type { StackContext } from "../src/lifecycle/context.ts";
import { containerProvider } from "../src/providers/container/provider.ts";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";

// `installAgent` on real container hosts, one with systemd and one with sysv as PID 1: Node.js 24
// and Galley shipped once (a second install ships 0 bytes), the wrapper runs, the service is
// installed the host's way. Enrollment and a running agent are proven end to end with a server.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: the hosts are container hosts";

describe("galley agent install on container hosts", { skip, timeout: 900_000 }, () => {
  let kitchen = "";
  const targets = new Map<string, SshTarget>();
  const cacheDir = () => path.join(kitchen, ".galley", "cache", "agent");
  const sh = async (name: string, command: string) => {
    const host = await transports.ssh.connect(targets.get(name)!);
    try {
      return await host.exec(["sh", "-c", command]);
    } finally {
      await host.close();
    }
  };

  before(async () => {
    kitchen = await tempDir("galley-agent-install-");
    const provisioned = await containerProvider.provision(
      { kitchen } as StackContext,
      [
        { name: "agsd1", provider: { type: "container", init: "systemd" } },
        { name: "agsv1", provider: { type: "container", init: "sysv" } },
      ],
      () => {},
    );
    for (const [name, host] of provisioned) {
      assert.ok(host.ok, `${name}: ${host.ok ? "" : host.error}`);
      targets.set(name, host.target);
    }
  });
  after(() => {
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("systemd host: ships Node.js 24 and Galley, galley runs there, the unit is enabled; a second install ships 0 bytes", async () => {
    const lines: string[] = [];
    const first = await installAgent(targets.get("agsd1")!, {
      cacheDir: cacheDir(),
      log: (l) => lines.push(l),
    });
    assert.ok(first.shipped > 10_000_000, JSON.stringify(first));
    assert.match(first.sha, /^[0-9a-f]{64}$/);
    assert.deepEqual([first.service, first.enrolled, first.started], ["systemd", false, false]);
    const version = await sh(
      "agsd1",
      "galley --version && /opt/galley/current/node --version && readlink /opt/galley/current",
    );
    assert.equal(version.exitCode, 0, version.stderr);
    assert.match(version.stdout, /^galley \d+\.\d+\.\d+\nv24\.\d+\.\d+\n/);
    assert.equal(version.stdout.trim().split("\n")[2], first.sha);
    // only the production dependencies travel
    const modules = await sh("agsd1", "ls /opt/galley/current/node_modules");
    assert.match(modules.stdout, /^hono$/m);
    assert.doesNotMatch(modules.stdout, /^(typescript|@biomejs|dependency-cruiser|autocannon)$/m);
    const unit = await sh(
      "agsd1",
      "cat /etc/systemd/system/galley-agent.service && systemctl is-enabled galley-agent.service",
    );
    assert.equal(unit.exitCode, 0, unit.stderr);
    assert.match(unit.stdout, /^ExecStart=\/usr\/local\/bin\/galley agent run$/m);
    assert.match(unit.stdout, /^Restart=always$/m);
    assert.match(unit.stdout, /^enabled$/m);
    assert.ok(
      lines.some((l) => /not started: not enrolled/.test(l)),
      lines.join("\n"),
    );

    const second: AgentInstall = await installAgent(targets.get("agsd1")!, { cacheDir: cacheDir() });
    assert.deepEqual(second, { ...first, shipped: 0 });
  });

  test("sysv host: an init script with its runlevel links; once enrolled it is started and keeps running", async () => {
    const first = await installAgent(targets.get("agsv1")!, { cacheDir: cacheDir() });
    assert.deepEqual([first.service, first.started], ["sysv", false]);
    assert.ok(first.shipped > 0);
    const script = await sh(
      "agsv1",
      "test -x /etc/init.d/galley-agent && readlink /etc/rc2.d/S99galley-agent /etc/rc0.d/K01galley-agent && galley --version",
    );
    assert.equal(script.exitCode, 0, script.stderr);
    assert.deepEqual(script.stdout.trim().split("\n").slice(0, 2), [
      "../init.d/galley-agent",
      "../init.d/galley-agent",
    ]);
    // as if enrolled: the next install starts the service (the loop keeps it up whatever the agent does)
    await sh("agsv1", "mkdir -p /etc/galley && echo '{}' > /etc/galley/agent.json");
    const second = await installAgent(targets.get("agsv1")!, { cacheDir: cacheDir() });
    assert.deepEqual([second.shipped, second.enrolled, second.started], [0, true, true]);
    const status = await sh("agsv1", "/etc/init.d/galley-agent status");
    assert.equal(status.exitCode, 0, status.stdout + status.stderr);
    // a third install leaves the running service alone
    const pid = (await sh("agsv1", "cat /run/galley-agent.pid")).stdout.trim();
    await installAgent(targets.get("agsv1")!, { cacheDir: cacheDir() });
    assert.equal((await sh("agsv1", "cat /run/galley-agent.pid")).stdout.trim(), pid);
    await sh("agsv1", "/etc/init.d/galley-agent stop");
  });
});
