import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { test } from "node:test";
import type { GalleyError } from "../src/core/errors.ts";
import { SshHost } from "../src/hosts/ssh.ts";
import { tempDir } from "../src/resources/testing.ts";
import { closedPort, keygen, refusal, signal, sshdForTests, startSshd } from "./support/sshd.ts";

// Connecting over SSH to a real OpenSSH server on 127.0.0.1: keys, the agent, known_hosts, jump
// hosts, sudo, timeouts and lost connections. galleyssh has passwordless sudo; galleypw's sudo
// asks for a password.

const { server, target, connect } = sshdForTests();

test("ssh: an unknown host key is refused under strict checking, with the keyscan command", async () => {
  const knownHostsFile = path.join(await tempDir(), "known_hosts");
  await fs.writeFile(knownHostsFile, "# nothing known yet\n");
  const error = await refusal(SshHost.connect(target({ knownHostsFile })));
  assert.equal(error.code, "HOST_KEY_UNKNOWN");
  const fingerprint = execFileSync("ssh-keygen", ["-l", "-f", `${server().dir}/host_ed25519.pub`], {
    encoding: "utf8",
  });
  assert.match(error.message, new RegExp(`ssh-ed25519 ${escapeRegExp(fingerprint.split(" ")[1]!)}`));
  assert.match(error.message, /\[127\.0\.0\.1\]:\d+/);
  assert.match(
    error.hint!,
    new RegExp(
      `ssh-keyscan -p ${server().port} -t ssh-ed25519 127\\.0\\.0\\.1 >> ${escapeRegExp(knownHostsFile)}`,
    ),
  );
  assert.match(error.hint!, /accept-new/);
});

test("ssh: accept-new records the key; a strict connect then works, also with hashed entries", async (t) => {
  const knownHostsFile = path.join(await tempDir(), "deep", "known_hosts");
  const first = await connect(t, { knownHostsFile, hostKeyChecking: "accept-new" });
  assert.equal((await first.exec(["true"])).exitCode, 0);
  assert.equal(await fs.readFile(knownHostsFile, "utf8"), `${server().hostKeyLine}\n`);
  assert.equal((await fs.stat(knownHostsFile)).mode & 0o777, 0o600);
  await connect(t, { knownHostsFile });
  // OpenSSH's own hashing (|1|salt|hash) of the recorded line
  execFileSync("ssh-keygen", ["-H", "-f", knownHostsFile], { stdio: "ignore" });
  assert.match(await fs.readFile(knownHostsFile, "utf8"), /^\|1\|/);
  const hashed = await connect(t, { knownHostsFile });
  assert.equal((await hashed.exec(["true"])).exitCode, 0);
});

test("ssh: a changed host key is refused with both fingerprints and the known_hosts line", async (t) => {
  const server = await startSshd(["root"]);
  t.after(() => server.stop());
  const knownHostsFile = path.join(await tempDir(), "known_hosts");
  await fs.writeFile(knownHostsFile, `# first line\n${server.hostKeyLine}\n`);
  await connect(t, { knownHostsFile }, server);
  const old = fingerprintOf(server.hostKeyLine);
  await server.restart({ newHostKey: true });
  for (const checking of ["strict", "accept-new"] as const) {
    const error = await refusal(
      SshHost.connect(target({ knownHostsFile, hostKeyChecking: checking }, server)),
    );
    assert.equal(error.code, "HOST_KEY_CHANGED");
    assert.ok(error.message.includes(old), error.message);
    assert.ok(error.message.includes(fingerprintOf(server.hostKeyLine)), error.message);
    assert.ok(error.message.includes(`${knownHostsFile}:2`), error.message);
    assert.match(error.hint!, /remove line 2/);
  }
  // nothing was appended by accept-new
  assert.equal((await fs.readFile(knownHostsFile, "utf8")).split("\n").length, 3);
});

test("ssh: a key the server does not accept is SSH_AUTH_FAILED naming host, user and key", async () => {
  const keyFile = path.join(await tempDir(), "stranger");
  keygen(keyFile, "stranger");
  const error = await refusal(SshHost.connect(target({ keyFile, retries: 2 })));
  assert.equal(error.code, "SSH_AUTH_FAILED");
  for (const part of ["box", "root", keyFile, `127.0.0.1:${server().port}`])
    assert.ok(error.message.includes(part), error.message);
});

test("ssh: a closed port is HOST_UNREACHABLE after the retries", async () => {
  const port = await closedPort();
  const attempts: number[] = [];
  const error = await refusal(
    SshHost.connect(target({ port, retries: 2 }), { onAttempt: (n) => attempts.push(n) }),
  );
  assert.equal(error.code, "HOST_UNREACHABLE");
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.match(
    error.message,
    new RegExp(`box at 127\\.0\\.0\\.1:${port}: connection refused \\(tried 3 times\\)`),
  );
});

test("ssh: without a key file the SSH agent at $SSH_AUTH_SOCK is used", async (t) => {
  const socket = path.join(await tempDir(), "agent.sock");
  const agent = spawn("ssh-agent", ["-D", "-a", socket], { stdio: "ignore" });
  t.after(() => signal(agent.pid!, "SIGTERM"));
  for (let i = 0; i < 50 && !(await fs.stat(socket).catch(() => undefined)); i++) await sleep(20);
  execFileSync("ssh-add", [server().clientKeyFile], {
    env: { ...process.env, SSH_AUTH_SOCK: socket },
    stdio: "ignore",
  });
  const saved = process.env.SSH_AUTH_SOCK;
  process.env.SSH_AUTH_SOCK = socket;
  t.after(() => {
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
  });
  const { keyFile: _, ...withoutKey } = target();
  const host = await SshHost.connect(withoutKey);
  t.after(() => host.close());
  assert.equal((await host.exec(["echo", "agent"])).stdout, "agent\n");
  delete process.env.SSH_AUTH_SOCK;
  const error = await refusal(SshHost.connect(withoutKey));
  assert.equal(error.code, "SSH_AUTH_FAILED");
  assert.match(error.message, /SSH_AUTH_SOCK/);
});

test("ssh: an encrypted key file is refused before connecting, with a hint to use the agent", async () => {
  const keyFile = path.join(await tempDir(), "locked");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "secret phrase", "-f", keyFile]);
  const error = await refusal(SshHost.connect(target({ keyFile })));
  assert.equal(error.code, "SSH_AUTH_FAILED");
  assert.ok(error.message.includes(keyFile));
  assert.match(error.hint!, /ssh-add/);
});

test("ssh: a server that accepts TCP but never speaks SSH times out as HOST_UNREACHABLE; abort stops a connect", async (t) => {
  const silent = net.createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  t.after(() => silent.close());
  const sockets: net.Socket[] = [];
  silent.on("connection", (socket) => sockets.push(socket));
  t.after(() => {
    for (const socket of sockets) socket.destroy();
  });
  const port = (silent.address() as net.AddressInfo).port;
  const started = performance.now();
  const error = await refusal(SshHost.connect(target({ port, connectTimeoutMs: 300, retries: 1 })));
  assert.equal(error.code, "HOST_UNREACHABLE");
  assert.match(error.message, /did not finish within the connect timeout \(tried 2 times\)/);
  assert.ok(performance.now() - started < 5000);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error("stopped by the test")), 100);
  await assert.rejects(
    SshHost.connect(target({ port, connectTimeoutMs: 60_000 }), { signal: controller.signal }),
    /stopped by the test/,
  );
  const dns = await refusal(SshHost.connect(target({ address: "no-such-host.invalid" })));
  assert.equal(dns.code, "HOST_UNREACHABLE");
  assert.match(dns.message, /no-such-host\.invalid:\d+/);
});

test("ssh: through a jump host (a second server() as the bastion)", async (t) => {
  const bastion = await startSshd(["root"]);
  t.after(() => bastion.stop());
  const jump = {
    address: "127.0.0.1",
    port: bastion.port,
    user: "root",
    keyFile: bastion.clientKeyFile,
    knownHostsFile: bastion.knownHostsFile,
    hostKeyChecking: "strict" as const,
  };
  const host = await connect(t, { jump });
  assert.equal((await host.exec(["echo", "via"])).stdout, "via\n");
  assert.ok(bastion.sessionPids().length > 0, "the bastion serves the connection");
  // the bastion's own host key is checked against its own known_hosts
  const stranger = path.join(await tempDir(), "known_hosts");
  await fs.writeFile(stranger, "");
  const error = await refusal(SshHost.connect(target({ jump: { ...jump, knownHostsFile: stranger } })));
  assert.equal(error.code, "HOST_KEY_UNKNOWN");
  assert.match(error.message, /jump host 127\.0\.0\.1:\d+ of box/);
  const closed = await closedPort();
  const unreachable = await refusal(SshHost.connect(target({ port: closed, jump })));
  assert.equal(unreachable.code, "HOST_UNREACHABLE");
  assert.match(unreachable.message, /through jump host/);
});

test("ssh: become where sudo asks for a password is BECOME_FAILED with a NOPASSWD hint", async () => {
  const error = await refusal(SshHost.connect(target({ user: "galleypw", become: true })));
  assert.equal(error.code, "BECOME_FAILED");
  assert.match(error.message, /galleypw/);
  assert.match(error.message, /password is required/);
  assert.match(error.hint!, /NOPASSWD/);
});

test("ssh: a dropped connection rejects pending and later calls with HOST_UNREACHABLE", async (t) => {
  const server = await startSshd(["root"]);
  t.after(() => server.stop());
  const host = await connect(t, {}, server);
  const pending = host.exec(["sleep", "30"]);
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const pid of server.sessionPids()) signal(pid, "SIGKILL");
  await assert.rejects(
    pending,
    (e: GalleyError) => e.code === "HOST_UNREACHABLE" && /box at 127\.0\.0\.1/.test(e.message),
  );
  await assert.rejects(host.stat("/etc"), { code: "HOST_UNREACHABLE" });
  assert.equal(host.lost?.code, "HOST_UNREACHABLE");
  assert.equal((await host.closed)?.code, "HOST_UNREACHABLE");
});

test("ssh: a host that stops answering is declared unreachable by keepalive, not waited for", async (t) => {
  const server = await startSshd(["root"]);
  t.after(() => server.stop());
  const host = await SshHost.connect(target({}, server), { keepaliveIntervalMs: 200 });
  t.after(() => host.close());
  const frozen = server.sessionPids();
  t.after(() => {
    for (const pid of frozen) signal(pid, "SIGCONT");
  });
  for (const pid of frozen) signal(pid, "SIGSTOP");
  await assert.rejects(host.exec(["true"]), { code: "HOST_UNREACHABLE" });
});

test("ssh: measurements over loopback (printed, not asserted)", async (t) => {
  for (const user of ["root", "galleyssh"]) {
    let started = performance.now();
    const host = await connect(t, { user });
    const connectMs = performance.now() - started;
    await host.exec(["true"]);
    const rounds: number[] = [];
    for (let i = 0; i < 10; i++) {
      started = performance.now();
      await host.exec(["true"]);
      rounds.push(performance.now() - started);
    }
    const paths = Array.from({ length: 1000 }, (_, i) => `/etc/galley-missing-${i}`).concat(["/etc/passwd"]);
    started = performance.now();
    await Promise.all(paths.map((p) => host.stat(p)));
    const batchMs = performance.now() - started;
    t.diagnostic(
      `${user} (login shell ${user === "root" ? "bash" : "sh"}): connect ${connectMs.toFixed(1)} ms, exec round trip median ${median(rounds).toFixed(1)} ms, 1001-stat batch ${batchMs.toFixed(1)} ms`,
    );
  }
});

/** A tree with every kind of entry a read may meet. */

function fingerprintOf(line: string): string {
  const blob = Buffer.from(line.split(" ")[2]!, "base64");
  return `SHA256:${process.getBuiltinModule("node:crypto").createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Whether a process is alive (a zombie waiting for its reaper is not). */

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
