import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Interrupted } from "../src/core/interrupt.ts";
import { acquireRunLock, type RunHolder } from "../src/core/runlock.ts";
import { pushFleet } from "../src/fleet/push.ts";
import { SshHost } from "../src/hosts/ssh.ts";
import { node, running, until, watch } from "./support/processes.ts";
import { refusal, sharedDir, signal, sshdForTests } from "./support/sshd.ts";

// The run lock and interruption over SSH, against a real OpenSSH server on 127.0.0.1: the lock is
// a remote flock held by a channel, so it ends with the connection; a signal reaches the remote
// command's process group through an SSH "signal" request.

const { server, target, connect } = sshdForTests();
const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));
const holder = fileURLToPath(new URL("./support/hold-run-lock.ts", import.meta.url));

test("ssh run lock: a second run waits for the first, or stops at once with RUN_LOCKED", async (t) => {
  const stateDir = path.join(await sharedDir(), "state");
  const first = await connect(t);
  const second = await connect(t);
  const held = await acquireRunLock(first, stateDir, { waitMs: 0, command: "galley push" });
  const refused = await refusal(acquireRunLock(second, stateDir, { waitMs: 0, command: "galley push" }));
  assert.equal(refused.code, "RUN_LOCKED");
  assert.match(
    refused.message,
    new RegExp(`the run of PID ${process.pid} on ${os.hostname()} since .* \\(galley push\\)`),
  );
  // the second waits, saying for whom, and gets the lock once the first releases it
  const seen: (RunHolder | undefined)[] = [];
  let released = 0;
  const next = await acquireRunLock(second, stateDir, {
    waitMs: 20_000,
    command: "galley push",
    onWait: (h) => {
      seen.push(h);
      setTimeout(() => {
        released = Date.now();
        void held.release();
      }, 300);
    },
  });
  assert.ok(released > 0, "it got the lock only after the first released it");
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.pid, process.pid);
  await next.release();
});

test("ssh run lock: one exec makes the state dir (mode 700), takes the lock and writes who holds it (mode 600)", async (t) => {
  const stateDir = path.join(await sharedDir(), "fresh", "state");
  const host = await connect(t);
  await host.facts();
  const before = { ...host.stats };
  const held = await acquireRunLock(host, stateDir, { waitMs: 0, command: "galley push" });
  assert.deepEqual(
    { channels: host.stats.channels - before.channels, commands: host.stats.commands - before.commands },
    { channels: 1, commands: 0 },
  );
  assert.equal((await fs.stat(stateDir)).mode & 0o777, 0o700);
  const file = path.join(stateDir, "run.lock.json");
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  const written = JSON.parse(await fs.readFile(file, "utf8")) as RunHolder;
  assert.deepEqual([written.pid, written.command], [process.pid, "galley push"]);
  assert.deepEqual(
    (await fs.readdir(stateDir)).sort(),
    ["run.lock", "run.lock.json"],
    "no temp file left beside them",
  );
  await held.release();
});

test("ssh run lock: the lock of a controller killed with SIGKILL is taken over, no PID guessing", async (t) => {
  const stateDir = path.join(await sharedDir(), "state");
  for (let round = 0; round < 2; round++) {
    const child = node([holder, JSON.stringify(target()), stateDir], process.cwd());
    const { output, exited } = watch(child);
    t.after(() => signal(child.pid!, "SIGKILL"));
    await until(() => output.stdout.includes("locked"), 15_000, `the holder (${output.stderr})`);
    const host = await connect(t);
    assert.equal(
      (await refusal(acquireRunLock(host, stateDir, { waitMs: 0, command: "x" }))).code,
      "RUN_LOCKED",
    );
    child.kill("SIGKILL");
    await exited;
    // the dead holder's lock goes with its connection (sshd sees it close, flock's cat reads EOF);
    // how soon depends on the machine's load, so the wait is generous and not asserted
    const taken = await acquireRunLock(host, stateDir, { waitMs: 120_000, command: "x" });
    assert.equal(typeof taken.release, "function");
    await taken.release();
  }
});

test("push: a host whose run lock stays taken fails alone with RUN_LOCKED; the others converge", async (t) => {
  const dir = await sharedDir();
  const recipe = path.join(dir, "noop.ts");
  await fs.writeFile(recipe, "export default async function () {}\n");
  // two hosts: galleyssh and galleypw each have their own state dir under their home
  const busy = target({ user: "galleyssh", name: "busy" });
  const free = target({ user: "galleypw", name: "free" });
  const holderHost = await connect(t, { user: "galleyssh" });
  const held = await acquireRunLock(holderHost, "/home/galleyssh/.local/state/galley", {
    waitMs: 0,
    command: "another push",
  });
  t.after(() => held.release());
  const phases: string[] = [];
  const outcomes = await pushFleet({
    members: [busy, free].map((target) => ({ name: target.name, target, attributes: [] })),
    mode: "apply",
    forks: 2,
    waitMs: 1000,
    compile: { runList: [recipe], cookbooksDir: path.join(dir, "cookbooks"), attributeFiles: [] },
    connect: (target) => SshHost.connect(target),
    onPhase: (name, phase) => {
      if (phase.phase === "locked") phases.push(`${name}: waiting for ${phase.holder}`);
    },
  });
  const failed = outcomes.get("busy")!;
  assert.equal(failed.status, "failed");
  assert.ok("error" in failed && failed.error.code === "RUN_LOCKED", JSON.stringify(failed));
  assert.match(failed.error.message, /busy with the run of PID \d+ on .* \(another push\) after waiting 1 s/);
  assert.equal(outcomes.get("free")!.status, "ok", JSON.stringify(outcomes.get("free")));
  assert.deepEqual(phases.length, 1);
  assert.match(phases[0]!, /^busy: waiting for the run of PID \d+ on .* since .* \(another push\)$/);
});

test("ssh interrupt: SIGTERM reaches the remote command and its children; later commands do not start", async (t) => {
  const dir = await sharedDir();
  // galleyssh without sudo writes there
  await fs.chmod(dir, 0o1777);
  const cases = [
    { login: {}, options: {} },
    { login: {}, options: { timeoutMs: 60_000 } },
    // a login shell (dash) that forks: `timeout` then makes a process group of its own
    { login: { user: "galleyssh" }, options: { timeoutMs: 60_000 } },
    // sudo to root: the login user's kill could not reach root's processes; it runs through sudo too
    { login: { user: "galleyssh", become: true }, options: {} },
    { login: { user: "galleyssh", become: true }, options: { timeoutMs: 60_000 } },
  ];
  for (const { login, options } of cases) {
    const controller = new AbortController();
    const host = await SshHost.connect(target(login), { signal: controller.signal });
    t.after(() => host.close());
    const script = `sleep 60 & echo $! > ${dir}/sleep.pid; echo $$ > ${dir}/sh.pid; wait`;
    const result = host.exec(["sh", "-c", script], options);
    // awaited below; a failed wait must not leave it unhandled when the connection closes
    result.catch(() => {});
    await until(() => safeRead(`${dir}/sleep.pid`) !== "", 10_000, "the remote command");
    const pids = [Number(safeRead(`${dir}/sh.pid`)), Number(safeRead(`${dir}/sleep.pid`))];
    controller.abort(new Interrupted("SIGTERM"));
    const ended = await result;
    assert.equal(ended.exitCode, 143, `${JSON.stringify(login)}: ${ended.stderr}`);
    // 143, not 137: the command ended on SIGTERM, not by the grace period's SIGKILL
    await until(() => pids.every((pid) => !running(pid)), 3000, "the remote processes to end");
    assert.equal((await refusal(host.exec(["true"]))).code, "INTERRUPTED");
    await fs.rm(`${dir}/sleep.pid`);
  }
});

test("push interrupt: SIGTERM stops the remote command, keeps the notification on the host, exits 143", async (t) => {
  const dir = await sharedDir();
  // galleyssh (no sudo: its state dir is its own) writes there
  await fs.chmod(dir, 0o1777);
  // a state dir of this test's own (the inventory's state_dir): other test files push as galleyssh too
  const stateDir = path.join(dir, "state");
  await fs.writeFile(
    path.join(dir, "long.ts"),
    `export default async function (r) {
  r.file("${dir}/app.conf", { content: "v1\\n", notifies: { action: "run", resource: "execute[restart]" } });
  r.execute("work", { command: "sleep 60 & echo $! > ${dir}/sleep.pid; echo $$ > ${dir}/sh.pid; wait" });
  r.execute("restart", { command: "echo restarted >> ${dir}/restarts", action: "nothing" });
}
`,
  );
  const sshd = server();
  await fs.writeFile(
    path.join(dir, "inventory.yaml"),
    `connection: { user: galleyssh, port: ${sshd.port}, key: ${sshd.clientKeyFile}, known_hosts: ${sshd.knownHostsFile}, state_dir: ${stateDir} }\nhosts:\n  box: { address: 127.0.0.1 }\n`,
  );
  const child = node([galley, "push", "-i", "inventory.yaml", "./long.ts"], dir);
  const { output, exited } = watch(child);
  t.after(() => signal(child.pid!, "SIGKILL"));
  await until(
    () => safeRead(`${dir}/sleep.pid`) !== "",
    30_000,
    `the remote command (${output.stdout} ${output.stderr})`,
  );
  const pids = [Number(safeRead(`${dir}/sh.pid`)), Number(safeRead(`${dir}/sleep.pid`))];
  child.kill("SIGTERM");
  const ended = await exited;
  assert.equal(ended.code, 143, output.stdout + output.stderr);
  await until(
    () => pids.every((pid) => !running(pid)),
    3000,
    `the remote processes to end (${output.stdout})`,
  );
  assert.match(output.stdout, /^box\s+interrupted\s/m);
  const pending = JSON.parse(await fs.readFile(path.join(stateDir, "notifications.json"), "utf8"));
  assert.deepEqual(
    pending.entries.map((n: { target: string }) => n.target),
    ["execute[restart]"],
  );
  assert.equal(safeRead(`${dir}/restarts`), "", "the notification was not delivered");
});

function safeRead(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}
