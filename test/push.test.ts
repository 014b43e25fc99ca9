import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";

// galley push to five real hosts on this machine (galley hosts up: systemd-nspawn, own network
// namespace, own sshd), converging the example cookbook over SSH with apt from the local repository.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: galley hosts makes network namespaces and mounts";
const cookbooks = fileURLToPath(new URL("../examples/cookbooks", import.meta.url));
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));
const names = ["host1", "host2", "host3", "host4", "host5"];

interface HostReport {
  status: string;
  summary?: { changed: number; unchanged: number; failed: number; pending: number };
  error?: { code: string; message: string; hint?: string };
  reason?: string;
  bundle?: string;
}

describe("galley push to five local hosts", { skip }, () => {
  let work = "";
  // the inventory galley hosts wrote, with a short connect timeout: a dead host costs 3 s, not 30
  const inventory = () => path.join(work, ".galley", "hosts", "inventory-fast.yaml");
  const push = (args: string[]) => {
    const result = cli(["push", "-i", inventory(), "--cookbooks", cookbooks, "--json", ...args], work);
    return {
      ...result,
      hosts: result.stdout ? (JSON.parse(result.stdout).hosts as Record<string, HostReport>) : {},
    };
  };
  const exec = (host: string, ...command: string[]) => cli(["hosts", "exec", host, "--", ...command], work);
  const address = async (host: string) => {
    const text = await fs.readFile(inventory(), "utf8");
    return new RegExp(`${host}: \\{ address: ([0-9.]+) \\}`).exec(text)![1]!;
  };

  before(async () => {
    work = await tempDir("galley-push-");
    const up = cli(["hosts", "up", "5"], work);
    assert.equal(up.code, 0, up.stderr);
    const written = await fs.readFile(path.join(work, ".galley", "hosts", "inventory.yaml"), "utf8");
    await fs.writeFile(
      inventory(),
      written.replace("connection:\n", "connection:\n  timeout: 3\n  retries: 0\n"),
    );
  });
  after(() => {
    if (work) cli(["hosts", "down"], work);
  });

  test("converges every host: nginx installed from the local repository and running, the site served", async () => {
    const run = push(["webapp"]);
    assert.equal(run.code, 0, run.stderr + run.stdout.slice(0, 3000));
    assert.deepEqual(Object.keys(run.hosts), names);
    for (const name of names) {
      const report = run.hosts[name]!;
      assert.equal(report.status, "ok", `${name}: ${JSON.stringify(report).slice(0, 2000)}`);
      assert.equal(report.summary!.failed, 0);
      assert.ok(report.summary!.changed >= 10, `${name} changed ${report.summary!.changed}`);
      assert.equal(exec(name, "systemctl", "is-active", "nginx").stdout.trim(), "active");
      assert.equal(exec(name, "readlink", "/srv/webapp/current").stdout.trim(), "/srv/webapp/releases/1");
      const page = await (await fetch(`http://${await address(name)}:8080/`)).text();
      assert.match(page, new RegExp(`Release 1 on ${name}\\.`));
    }
  });

  test("a second push changes nothing on any host", () => {
    const run = push(["webapp"]);
    assert.equal(run.code, 0, run.stderr);
    for (const name of names) {
      assert.equal(run.hosts[name]!.status, "ok");
      assert.equal(run.hosts[name]!.summary!.changed, 0, `${name} changed on the second run`);
    }
    // one prepared run: every host's report names the same cookbooks (a plain folder: a digest id)
    const ids = new Set(names.map((name) => run.hosts[name]!.bundle));
    assert.equal(ids.size, 1, [...ids].join(", "));
    assert.match([...ids][0] ?? "", /^digest:[0-9a-f]{64}$/);
  });

  test("--plan shows a drifted file on one host and changes nothing; --limit selects hosts", () => {
    assert.equal(exec("host2", "sh", "-c", "echo drifted > /srv/webapp/releases/1/robots.txt").code, 0);
    const plan = push(["--plan", "--limit", "host1:host2", "webapp"]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.deepEqual(Object.keys(plan.hosts), ["host1", "host2"]);
    assert.equal(plan.hosts.host1!.summary!.pending, 0);
    assert.equal(plan.hosts.host2!.summary!.pending, 1);
    assert.equal(exec("host2", "cat", "/srv/webapp/releases/1/robots.txt").stdout, "drifted\n");
    const fix = push(["--limit", "host2", "webapp"]);
    assert.equal(fix.hosts.host2!.summary!.changed, 1);
  });

  test("a changed host key is refused; the other hosts converge", () => {
    const rekey = exec(
      "host4",
      "sh",
      "-c",
      "rm -f /etc/ssh/ssh_host_*_key* && ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key && systemctl restart ssh",
    );
    assert.equal(rekey.code, 0, rekey.stderr);
    const run = push(["webapp"]);
    assert.equal(run.code, 4, run.stderr);
    assert.equal(run.hosts.host4!.status, "unreachable");
    assert.equal(run.hosts.host4!.error!.code, "HOST_KEY_CHANGED");
    assert.match(run.hosts.host4!.error!.hint!, /known_hosts/);
    for (const name of ["host1", "host2", "host3", "host5"])
      assert.equal(run.hosts[name]!.status, "ok", name);
  });

  test("human output: a line per host phase and a recap table", () => {
    const run = cli(
      ["push", "-i", inventory(), "--cookbooks", cookbooks, "--limit", "host1,host5", "webapp"],
      work,
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /host1\s+connecting/);
    assert.match(run.stderr, /host5\s+done: 0 changed, 0 failed/);
    assert.match(run.stdout, /host\s+status\s+changed\s+unchanged\s+failed\s+skipped\s+time/);
    assert.match(run.stdout, /host5\s+ok\s+0\s+\d+\s+0\s+0\s+[\d.]+s/);
  });

  // the faults come last: after a host was killed and started again the others are not asked again
  test("a host killed mid-run is reported unreachable; the others finish", async () => {
    // host3 waits in a command long enough to be killed while it converges
    const recipe = path.join(work, "slow.ts");
    await fs.writeFile(
      recipe,
      `export default function (r) {
  if (r.facts.hostname === "host3") r.execute("wait", { command: ["sleep", "60"] });
  r.file("/srv/after-wait", { content: "done\\n" });
}
`,
    );
    const child = spawn(
      process.execPath,
      [galleyBin, "push", "-i", inventory(), "--limit", "!host4", "--json", recipe],
      {
        cwd: work,
        env: { ...process.env, NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    const converging = new Promise<void>((resolve) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk;
        if (/host3\s+converging/.test(stderr)) resolve();
      });
    });
    const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
    await Promise.race([converging, exited]);
    const killed = cli(["hosts", "kill", "host3"], work);
    assert.equal(killed.code, 0, killed.stderr);
    const code = await exited;
    const hosts = JSON.parse(stdout).hosts as Record<string, HostReport>;
    assert.equal(code, 4, stderr);
    assert.equal(hosts.host3!.status, "unreachable", JSON.stringify(hosts.host3));
    assert.equal(hosts.host3!.error!.code, "HOST_UNREACHABLE");
    for (const name of names.filter((n) => n !== "host3" && n !== "host4")) {
      assert.equal(hosts[name]!.status, "ok", `${name}: ${JSON.stringify(hosts[name])}`);
      assert.equal(exec(name, "cat", "/srv/after-wait").stdout, "done\n");
    }
  });

  test("--max-fail-percent stops starting hosts once too many failed", () => {
    // host3 is still dead: with one host at a time, host5 is never started (host4 kept its new key)
    const run = push(["--forks", "1", "--max-fail-percent", "0", "--limit", "!host4", "webapp"]);
    assert.equal(run.code, 1);
    assert.equal(run.hosts.host1!.status, "ok", JSON.stringify(run.hosts.host1));
    assert.equal(run.hosts.host3!.status, "unreachable");
    assert.equal(run.hosts.host4, undefined);
    assert.equal(run.hosts.host5!.status, "skipped", JSON.stringify(run.hosts.host5));
    assert.match(run.hosts.host5!.reason!, /more than 0% of hosts failed/);
    const started = cli(["hosts", "start", "host3"], work);
    assert.equal(started.code, 0, started.stderr);
  });
});
