import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readlinkSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cgroupMachines, cgroupPids } from "../src/providers/container/cgroups.ts";
import { processStart } from "../src/providers/container/procs.ts";
import { sshBanner } from "../src/providers/container/ready.ts";
import { tempDir } from "../src/resources/testing.ts";

// Real hosts on this machine: network namespaces, overlayfs, sshd, systemd-nspawn and apt.
// The image and apt repository are built once per machine (cached), so only the first run is slow.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux (network namespaces, mounts): run the tests as root";
const repoRoot = fileURLToPath(new URL("..", import.meta.url));

interface HostJson {
  name: string;
  address: string;
  init: string;
  status: string;
  pid: number | null;
  netns: string;
  veth: string;
}

let runner = "";

// runs `galley hosts …` as a real process in `cwd` (registering the command if commands.ts does not yet)
function galley(cwd: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [runner, "hosts", ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function json(cwd: string, args: string[]) {
  const result = await galley(cwd, [...args, "--json"]);
  assert.equal(result.code, 0, `galley hosts ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  return JSON.parse(result.stdout);
}

async function exec(cwd: string, name: string, command: string) {
  return galley(cwd, ["exec", name, "--", "bash", "-c", command]);
}

function ssh(cwd: string, user: string, address: string, command: string) {
  const dir = path.join(cwd, ".galley", "hosts");
  return spawnSync(
    "ssh",
    [
      ...["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=10"],
      ...["-o", `UserKnownHostsFile=${dir}/known_hosts`, "-o", "GlobalKnownHostsFile=/dev/null"],
      ...["-i", `${dir}/id_ed25519`, `${user}@${address}`, command],
    ],
    { encoding: "utf8" },
  );
}

function netnsList(): string {
  return spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;
}

function links(): string {
  return spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout;
}

// a process that runs (zombies waiting for the machine's init to reap them do not)
function running(pid: number): boolean {
  return processStart(pid) !== undefined;
}

before(async () => {
  const dir = await tempDir("galley-hosts-runner-");
  runner = path.join(dir, "galley.ts");
  const src = (file: string) => JSON.stringify(path.join(repoRoot, file));
  await fs.writeFile(
    runner,
    [
      `import { commands } from ${src("src/cli/commands.ts")};`,
      `import { main } from ${src("src/cli/main.ts")};`,
      `commands.hosts ??= async () => (await import(${src("src/cli/hosts.ts")})).hostsCommand;`,
      "process.exitCode = await main(process.argv.slice(2));",
    ].join("\n"),
  );
});

describe("container hosts", { skip }, () => {
  let a = "";
  let b = "";
  const seenPids: number[] = [];
  let hosts: HostJson[] = [];

  before(async () => {
    a = await tempDir("galley-fleet-a-");
    b = await tempDir("galley-fleet-b-");
  });
  // whatever happens, no namespace, mount or process outlives the test
  after(async () => {
    await galley(a, ["down"]);
    await galley(b, ["down"]);
  });

  test("up: two sysv hosts and one systemd host, each with its own name, address and sshd", async () => {
    const sysv = await galley(a, ["up", "2", "--init", "sysv", "--json"]);
    assert.equal(sysv.code, 0, sysv.stderr);
    assert.match(sysv.stderr, /host1: creating/);
    assert.match(sysv.stderr, /host2: sshd ready at/);
    const systemd = await json(a, ["up", "1", "--init", "systemd"]);
    assert.deepEqual(
      systemd.hosts.map((h: HostJson) => [h.name, h.init, h.status]),
      [["host3", "systemd", "running"]],
    );
    hosts = (await json(a, ["list"])).hosts;
    assert.deepEqual(
      hosts.map((h) => [h.name, h.init, h.status]),
      [
        ["host1", "sysv", "running"],
        ["host2", "sysv", "running"],
        ["host3", "systemd", "running"],
      ],
    );
    assert.equal(new Set(hosts.map((h) => h.address)).size, 3);
    for (const host of hosts) seenPids.push(host.pid!);
    const inventory = readFileSync(path.join(a, ".galley/hosts/inventory.yaml"), "utf8");
    assert.match(inventory, /container: \{ hosts: \[host1, host2, host3\] \}/);
    for (const host of hosts)
      assert.match(inventory, new RegExp(`${host.name}: \\{ address: ${host.address} \\}`));
    const key = await fs.stat(path.join(a, ".galley/hosts/id_ed25519"));
    assert.equal(key.mode & 0o777, 0o600);
  });

  test("exec runs inside the host: its hostname, its address, its exit code", async () => {
    for (const host of hosts) {
      const result = await exec(a, host.name, "hostname; ip -4 -o addr show eth0; ip route");
      assert.equal(result.code, 0, result.stderr);
      const [hostname, address, ...routes] = result.stdout.trim().split("\n");
      assert.equal(hostname, host.name);
      assert.match(address!, new RegExp(`inet ${host.address.replaceAll(".", "\\.")}/24`));
      // only the private bridge: no default route, nothing reaches outside
      assert.equal(routes.length, 1, routes.join("\n"));
      assert.doesNotMatch(routes.join("\n"), /default/);
    }
    assert.equal((await exec(a, "host1", "exit 7")).code, 7);
    // hosts reach each other over the bridge
    const banner = await exec(a, "host1", `exec 3<>/dev/tcp/${hosts[2]!.address}/22; head -c 8 <&3`);
    assert.equal(banner.stdout, "SSH-2.0-", banner.stderr);
  });

  test("sshd answers with the host key recorded in known_hosts, as root and as galley with sudo", async () => {
    const known = readFileSync(path.join(a, ".galley/hosts/known_hosts"), "utf8");
    for (const host of hosts) {
      const hostKey = (await exec(a, host.name, "cat /etc/ssh/ssh_host_ed25519_key.pub")).stdout.split(
        " ",
      )[1]!;
      assert.ok(
        known.includes(`${host.address},${host.name} ssh-ed25519 ${hostKey}`),
        `${host.name} in known_hosts`,
      );
      const asRoot = ssh(a, "root", host.address, "hostname");
      assert.equal(asRoot.status, 0, asRoot.stderr);
      assert.equal(asRoot.stdout.trim(), host.name);
      const asGalley = ssh(a, "galley", host.address, "sudo -n true && whoami");
      assert.equal(asGalley.status, 0, asGalley.stderr);
      assert.equal(asGalley.stdout.trim(), "galley");
    }
    // the host keys differ: no key is shared through the image
    assert.equal(
      new Set(
        known
          .trim()
          .split("\n")
          .map((line) => line.split(" ")[2]),
      ).size,
      3,
    );
  });

  test("systemd hosts boot for real: systemctl works and ssh is an active unit", async () => {
    const state = await exec(a, "host3", "systemctl is-system-running --wait; systemctl is-active ssh");
    assert.equal(state.stdout.trim(), "running\nactive", state.stderr);
  });

  test("apt installs offline from the local repository, into that host's disk only", async () => {
    const hello = await exec(
      a,
      "host1",
      "apt-get install -y -q galley-hello >/dev/null && cat /usr/share/galley-hello/hello.txt",
    );
    assert.equal(hello.code, 0, hello.stderr);
    assert.equal(hello.stdout, "hello from galley-hello 1.0\n");
    assert.ok(existsSync(path.join(a, ".galley/hosts/host1/upper/usr/share/galley-hello/hello.txt")));
    assert.ok(!existsSync(path.join(a, ".galley/hosts/host2/upper/usr/share/galley-hello")));
    assert.equal((await exec(a, "host2", "test -e /usr/share/galley-hello")).code, 1);
    const { image } = await json(a, ["image"]);
    assert.ok(
      !existsSync(path.join(image.rootfs, "usr/share/galley-hello")),
      "the shared image is unchanged",
    );
    // a real service from the repository: nginx under systemd, and under sysv with service(8)
    const nginx = await exec(
      a,
      "host3",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null && systemctl is-active nginx",
    );
    assert.equal(nginx.stdout.trim(), "active", nginx.stderr);
    const sysvNginx = await exec(
      a,
      "host2",
      "DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx >/dev/null && service nginx status",
    );
    assert.equal(sysvNginx.code, 0, sysvNginx.stdout + sysvNginx.stderr);
  });

  test("stop and start keep the host's disk, address and host key", async () => {
    for (const name of ["host1", "host3"])
      assert.equal((await exec(a, name, "echo kept > /root/marker")).code, 0);
    const stopped = await json(a, ["stop", "host1", "host3"]);
    assert.deepEqual(
      stopped.hosts.map((h: HostJson) => h.status),
      ["stopped", "stopped"],
    );
    assert.equal(readFileSync(path.join(a, ".galley/hosts/host3/upper/root/marker"), "utf8"), "kept\n");
    assert.equal(await sshBanner(hosts[2]!.address), undefined);
    await json(a, ["start", "host1", "host3"]);
    for (const host of [hosts[0]!, hosts[2]!]) {
      const result = ssh(a, "root", host.address, "cat /root/marker");
      assert.equal(result.status, 0, result.stderr);
      assert.equal(result.stdout, "kept\n");
    }
    // nginx was enabled before the stop: systemd starts it again at boot
    assert.equal((await exec(a, "host3", "systemctl is-active nginx")).stdout.trim(), "active");
  });

  test("kill makes the address unreachable; start brings the host back", async () => {
    const host2 = hosts[1]!;
    const killed = await json(a, ["kill", "host2"]);
    assert.equal(killed.hosts[0].status, "killed");
    assert.equal(await sshBanner(host2.address, 1500), undefined);
    assert.equal(running(host2.pid!), false);
    const started = await json(a, ["start", "host2"]);
    assert.equal(started.hosts[0].status, "running");
    seenPids.push(started.hosts[0].pid);
    assert.equal(ssh(a, "root", host2.address, "true").status, 0);
  });

  test("cut takes a running host off the network; connect brings it back", async () => {
    const host1 = hosts[0]!;
    await json(a, ["cut", "host1"]);
    assert.equal(await sshBanner(host1.address, 1500), undefined);
    assert.equal((await exec(a, "host1", "true")).code, 0, "the host itself keeps running");
    await json(a, ["connect", "host1"]);
    assert.match((await sshBanner(host1.address, 5000)) ?? "", /^SSH-2\.0-OpenSSH/);
  });

  test("a second fleet runs side by side on its own bridge and subnet", async () => {
    const other = await json(b, ["up", "web1", "--init", "sysv"]);
    const web1 = other.hosts[0] as HostJson;
    assert.equal(web1.name, "web1");
    assert.notEqual(
      web1.address.split(".").slice(0, 3).join("."),
      hosts[0]!.address.split(".").slice(0, 3).join("."),
    );
    assert.notEqual(web1.netns.split("-")[0], hosts[0]!.netns.split("-")[0]);
    seenPids.push(web1.pid!);
    assert.equal((await exec(b, "web1", "hostname")).stdout.trim(), "web1");
    assert.equal(ssh(b, "root", web1.address, "true").status, 0);
    // fleet a's key is not authorized on fleet b's hosts
    assert.notEqual(ssh(a, "root", web1.address, "true").status, 0);
  });

  test("destroy removes one host: namespace, folder, inventory and known_hosts entries", async () => {
    const host2 = (await json(a, ["list"])).hosts[1] as HostJson;
    await json(a, ["destroy", "host2"]);
    assert.ok(!netnsList().includes(host2.netns));
    assert.ok(!existsSync(path.join(a, ".galley/hosts/host2")));
    assert.doesNotMatch(readFileSync(path.join(a, ".galley/hosts/inventory.yaml"), "utf8"), /host2/);
    assert.doesNotMatch(readFileSync(path.join(a, ".galley/hosts/known_hosts"), "utf8"), /host2/);
    assert.equal(running(host2.pid!), false);
  });

  test("down removes every namespace, veth, bridge, mount and process of the fleet", async () => {
    const listed = (await json(a, ["list"])).hosts as HostJson[];
    const prefix = listed[0]!.netns.split("-")[0]!;
    await json(a, ["down"]);
    await json(b, ["down"]);
    for (const dir of [a, b]) {
      assert.ok(!existsSync(path.join(dir, ".galley/hosts")));
      assert.ok(!readFileSync("/proc/mounts", "utf8").includes(dir), `no mount under ${dir}`);
    }
    assert.ok(!netnsList().includes(prefix), netnsList());
    assert.ok(!links().includes(prefix), links());
    for (const pid of seenPids) assert.equal(running(pid), false, `pid ${pid} is gone`);
    assert.deepEqual(cgroupMachines(prefix), [], "no cgroup of the fleet is left");
    // nothing left to do: down again is fine
    await json(a, ["down"]);
  });
});

describe("crash clean-up", { skip }, () => {
  test("down works when state.json is corrupted; up refuses it with a hint", async () => {
    const dir = await tempDir("galley-fleet-c-");
    try {
      const up = await json(dir, ["up", "1", "--init", "sysv"]);
      const host = up.hosts[0] as HostJson;
      await fs.writeFile(path.join(dir, ".galley/hosts/state.json"), "{ not json");
      const refused = await galley(dir, ["up", "1"]);
      assert.equal(refused.code, 5);
      assert.match(refused.stderr, /state\.json is not a valid fleet state/);
      assert.match(refused.stderr, /hint: galley hosts down/);
      await json(dir, ["down"]);
      assert.ok(!netnsList().includes(host.netns));
      assert.ok(!links().includes(host.netns.split("-")[0]!));
      assert.ok(!readFileSync("/proc/mounts", "utf8").includes(dir));
      assert.equal(running(host.pid!), false);
    } finally {
      await galley(dir, ["down"]);
    }
  });

  test("up sweeps a namespace left behind by a crash", async () => {
    const dir = await tempDir("galley-fleet-d-");
    try {
      const first = (await json(dir, ["up", "1", "--init", "sysv"])).hosts[0] as HostJson;
      const stray = `${first.netns.split("-")[0]}-stray`;
      spawnSync("ip", ["netns", "add", stray]);
      assert.ok(netnsList().includes(stray));
      await json(dir, ["up", "1", "--init", "sysv"]);
      assert.ok(!netnsList().includes(stray), "the stray namespace was swept");
    } finally {
      await galley(dir, ["down"]);
    }
  });
});

describe("systemd hosts are isolated from each other", { skip }, () => {
  // every host has cgroups of its own: systemd-nspawn --keep-unit started from one cgroup would
  // put all the hosts' systemds in one shared "payload" cgroup (one ssh.service, one user-0.slice…)
  test("each host's processes live in its own cgroups; a kill and start of one leaves the other alone", async () => {
    const dir = await tempDir("galley-fleet-i-");
    try {
      const [one, two] = (await json(dir, ["up", "2", "--init", "systemd"])).hosts as HostJson[];
      for (const host of [one!, two!]) {
        const cgroup = readFileSync(`/proc/${host.pid}/cgroup`, "utf8");
        assert.match(cgroup, new RegExp(`^0::/galley/${host.netns}/payload/init\\.scope$`, "m"));
        // everything in the host's cgroups runs in the host's own network namespace
        const pids = cgroupPids(host.netns);
        assert.ok(pids.length >= 4, `systemd, journald, sshd… in ${host.name}'s cgroups: ${pids}`);
        const netns = readlinkSync(`/proc/${host.pid}/ns/net`);
        for (const pid of pids) {
          const own = (() => {
            try {
              return readlinkSync(`/proc/${pid}/ns/net`);
            } catch {
              return netns; // exited meanwhile
            }
          })();
          // the launcher (systemd-nspawn) stays on the machine's network; the rest is the host's
          if (own !== netns) assert.match(readFileSync(`/proc/${pid}/comm`, "utf8"), /systemd-nspawn/);
        }
      }
      // a login session on host1 outlives a kill and a start of host2
      const session = spawn(
        "ssh",
        [
          ...["-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${dir}/.galley/hosts/known_hosts`],
          ...["-i", `${dir}/.galley/hosts/id_ed25519`, `root@${one!.address}`],
          "sleep 6; echo survived",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      session.stdout.on("data", (chunk) => (output += chunk));
      const ended = new Promise<number>((resolve) => session.on("close", (code) => resolve(code ?? -1)));
      assert.equal(ssh(dir, "root", two!.address, "true").status, 0);
      await json(dir, ["kill", two!.name]);
      assert.deepEqual(cgroupPids(two!.netns), [], "a killed host leaves no process in its cgroups");
      await json(dir, ["start", two!.name]);
      assert.equal(ssh(dir, "root", two!.address, "true").status, 0);
      assert.equal(ssh(dir, "root", one!.address, "systemctl is-active ssh").stdout, "active\n");
      assert.equal(await ended, 0);
      assert.equal(output, "survived\n");
      await json(dir, ["down"]);
      assert.deepEqual(cgroupMachines(one!.netns.split("-")[0]!), [], "down removes the cgroups");
    } finally {
      await galley(dir, ["down"]);
    }
  });
});

describe("concurrent commands", { skip }, () => {
  test("two up commands on one fleet take turns: two hosts, two addresses", async () => {
    const dir = await tempDir("galley-fleet-h-");
    try {
      const results = await Promise.all([
        galley(dir, ["up", "1", "--init", "sysv"]),
        galley(dir, ["up", "1", "--init", "sysv"]),
      ]);
      for (const result of results) assert.equal(result.code, 0, result.stderr);
      const listed = (await json(dir, ["list"])).hosts as HostJson[];
      assert.deepEqual(
        listed.map((h) => [h.name, h.status]),
        [
          ["host1", "running"],
          ["host2", "running"],
        ],
      );
      assert.notEqual(listed[0]!.address, listed[1]!.address);
    } finally {
      await galley(dir, ["down"]);
    }
  });
});

describe("after a reboot of the machine", { skip }, () => {
  test("start makes the lost namespace, veth and bridge again, with the same address", async () => {
    const dir = await tempDir("galley-fleet-g-");
    try {
      const host = (await json(dir, ["up", "1", "--init", "sysv"])).hosts[0] as HostJson;
      await json(dir, ["kill", host.name]);
      // what a reboot loses: everything under /run and every interface
      spawnSync("ip", ["netns", "delete", host.netns]);
      spawnSync("ip", ["link", "delete", host.netns.split("-")[0]!]);
      assert.ok(!netnsList().includes(host.netns));
      const started = (await json(dir, ["start", host.name])).hosts[0] as HostJson;
      assert.equal(started.address, host.address);
      assert.equal(ssh(dir, "root", host.address, "true").status, 0);
    } finally {
      await galley(dir, ["down"]);
    }
  });
});

describe("refusals", () => {
  test("not root: PROVIDER_FAILED saying so, with a hint", async (t) => {
    if (root && !existsSync("/usr/bin/setpriv")) return t.skip("needs setpriv to drop root");
    const dir = await tempDir("galley-fleet-e-");
    await fs.chmod(dir, 0o777);
    await fs.chmod(path.dirname(runner), 0o755);
    const command = [process.execPath, runner, "hosts", "up", "1"];
    const argv = root ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...command] : command;
    const result = spawnSync(argv[0]!, argv.slice(1), {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, HOME: dir },
    });
    assert.equal(result.status, 5, result.stderr);
    assert.match(result.stderr, /error\[PROVIDER_FAILED\]: the container provider needs root/);
    assert.match(result.stderr, /hint: run it as root/);
  });

  test("usage errors name the subcommand and say what to do", async () => {
    const dir = await tempDir("galley-fleet-f-");
    const none = await galley(dir, []);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /which subcommand\?/);
    const bad = await galley(dir, ["up", "3", "--init", "upstart"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--init must be systemd or sysv/);
    const name = await galley(dir, ["up", "Web_1"]);
    assert.equal(name.code, 2);
    assert.match(name.stderr, /"Web_1" is not a valid host name/);
  });
});
