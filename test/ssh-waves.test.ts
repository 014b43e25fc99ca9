import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { Report } from "../src/core/report.ts";
import { converge } from "../src/core/converge.ts";
import type { Host } from "../src/core/host.ts";
import { compileRun } from "../src/cookbooks/solo.ts";
import type { SshHost } from "../src/hosts/ssh.ts";
import { tempDir } from "../src/resources/testing.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";
import { node, watch } from "./support/processes.ts";
import { sharedDir, signal, sshdForTests } from "./support/sshd.ts";

// Waves over SSH against a real OpenSSH server on 127.0.0.1: the same catalog converged one
// resource at a time and in waves gives the same files and the same report, in fewer commands;
// and a `galley push` killed with SIGKILL in the middle of a wave leaves every file old or new.

const { server, connect } = sshdForTests();
const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

/** The same host, applying one resource at a time (as a host that does not batch writes). */
function oneAtATime(host: SshHost): Host {
  return new Proxy(host, {
    get(target, key) {
      if (key === "waveSize") return undefined;
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function body(root: string): string {
  return `
    r.directory("${root}/conf", { mode: "0750" });
    for (let i = 0; i < 20; i++) r.file("${root}/conf/f" + i, { content: "conf " + i + "\\n", mode: "0640" });
    for (let i = 0; i < 20; i++) r.file("${root}/flat/g" + i, { content: "flat " + i + "\\n", notifies: { action: "run", resource: "execute[restart]" } });
    r.file("${root}/missing/x", { content: "no directory for me\\n" });
    r.file("${root}/flat/after-missing", { content: "fine\\n", requires: "file[${root}/missing/x]" });
    r.link("${root}/current", { to: "${root}/conf" });
    r.template("${root}/conf/t.conf", { source: "t.eta", variables: { port: 80 } });
    r.execute("restart", { command: "echo restarted >> ${root}/log", action: "nothing" });`;
}

/** A report's resources with the root replaced, without timings: what must not change. */
function shape(report: Report, root: string) {
  const text = (value: unknown) => JSON.stringify(value)?.replaceAll(root, "ROOT");
  return report.resources.map((r) => ({
    id: text(r.id),
    status: r.status,
    actions: r.actions,
    reason: text(r.reason),
    diff: text(r.diff),
    error: r.error?.code,
    notified: text(r.notified),
  }));
}

test("waves: the same catalog converges to the same files and report in waves as one at a time, in fewer commands", async (t) => {
  const results: { report: Report; commands: number; files: string[]; root: string }[] = [];
  for (const waves of [false, true]) {
    const root = await sharedDir();
    await fs.mkdir(path.join(root, "flat"));
    await fs.writeFile(path.join(root, "flat", "g3"), "old\n");
    const state = await tempDir();
    const kitchen = await makeKitchen({
      app: { recipes: { default: recipe(body(root)) }, templates: { "t.eta": "port = <%= it.port %>\n" } },
    });
    const ssh = await connect(t);
    const host = waves ? ssh : oneAtATime(ssh);
    const { catalog, types } = await compileRun({
      runList: ["app"],
      cookbooksDir: path.join(kitchen, "cookbooks"),
      attributeFiles: [],
      host,
    });
    const before = ssh.stats.commands;
    const report = await converge(catalog, host, {
      mode: "apply",
      stateDir: state,
      types,
      concurrency: ssh.readConcurrency,
    });
    const commands = ssh.stats.commands - before;
    const files: string[] = [];
    for (const dir of ["conf", "flat"]) {
      for (const name of (await fs.readdir(path.join(root, dir))).sort()) {
        const stat = await fs.lstat(path.join(root, dir, name));
        files.push(
          `${dir}/${name} ${(stat.mode & 0o7777).toString(8)} ${await fs.readFile(path.join(root, dir, name), "utf8")}`,
        );
      }
    }
    files.push(`current -> ${(await fs.readlink(path.join(root, "current"))).replace(root, "ROOT")}`);
    files.push(`log ${await fs.readFile(path.join(root, "log"), "utf8")}`);
    results.push({ report, commands, files, root });
  }
  const [serial, waved] = results as [(typeof results)[0], (typeof results)[0]];
  assert.equal(waved.report.status, "failed", "the file in a missing directory fails");
  assert.deepEqual(shape(waved.report, waved.root), shape(serial.report, serial.root));
  assert.deepEqual(waved.files, serial.files);
  const failed = waved.report.resources.filter((r) => r.status === "failed").map((r) => r.id);
  assert.deepEqual(failed, [`file[${waved.root}/missing/x]`], "a failed write fails that resource only");
  const skipped = waved.report.resources.find((r) => r.id === `file[${waved.root}/flat/after-missing]`);
  assert.equal(skipped?.status, "skipped");
  assert.equal(waved.files.at(-1), "log restarted\n", "the delayed notification ran once");
  // one at a time, each changed resource costs a write and a read-back; in waves, a few commands in all
  assert.ok(serial.commands >= 40, `one at a time: ${serial.commands} commands`);
  assert.ok(waved.commands <= 24, `in waves: ${waved.commands} commands (one at a time: ${serial.commands})`);
  assert.ok(waved.commands * 3 < serial.commands, `${waved.commands} vs ${serial.commands}`);
});

test("waves: galley push killed with SIGKILL mid-wave leaves every file old or new; the next run delivers the notification", async (t) => {
  const dir = await sharedDir();
  await fs.chmod(dir, 0o1777);
  // a state dir of this test's own (the inventory's state_dir): other test files push as galleyssh too
  const stateDir = path.join(dir, "state");
  const count = 150;
  const size = 256 * 1024;
  await fs.mkdir(path.join(dir, "out"));
  await fs.chmod(path.join(dir, "out"), 0o777);
  // owned by the login: a write keeps the owner it finds
  const uid = Number(execFileSync("id", ["-u", "galleyssh"], { encoding: "utf8" }));
  const gid = Number(execFileSync("id", ["-g", "galleyssh"], { encoding: "utf8" }));
  for (let i = 0; i < count; i++) {
    await fs.writeFile(path.join(dir, "out", `f${i}`), "old\n");
    await fs.chown(path.join(dir, "out", `f${i}`), uid, gid);
  }
  await fs.writeFile(
    path.join(dir, "wave.ts"),
    `export default function (r) {
  for (let i = 0; i < ${count}; i++)
    r.file("${dir}/out/f" + i, { content: String(i % 10).repeat(${size}), backup: false, notifies: { action: "run", resource: "execute[restart]" } });
  r.execute("restart", { command: "echo restarted >> ${dir}/restarts", action: "nothing" });
}
`,
  );
  const sshd = server();
  await fs.writeFile(
    path.join(dir, "inventory.yaml"),
    `connection: { user: galleyssh, port: ${sshd.port}, key: ${sshd.clientKeyFile}, known_hosts: ${sshd.knownHostsFile}, state_dir: ${stateDir} }\nhosts:\n  box: { address: 127.0.0.1 }\n`,
  );
  const isNew = (text: string, i: number) => text === String(i % 10).repeat(size);
  const contents = async () =>
    Promise.all(Array.from({ length: count }, (_, i) => fs.readFile(path.join(dir, "out", `f${i}`), "utf8")));

  const child = node([galley, "push", "-i", "inventory.yaml", "./wave.ts"], dir);
  const { output, exited } = watch(child);
  t.after(() => signal(child.pid!, "SIGKILL"));
  // the wave is being written: the first file is in place, then SIGKILL
  const deadline = Date.now() + 60_000;
  for (;;) {
    const first = await fs.readFile(path.join(dir, "out", "f0"), "utf8").catch(() => "");
    if (isNew(first, 0)) break;
    if (Date.now() > deadline) throw new Error(`the wave never started: ${output.stdout} ${output.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  child.kill("SIGKILL");
  await exited;
  const afterKill = await contents();
  const replaced = afterKill.filter((text, i) => isNew(text, i)).length;
  for (const [i, text] of afterKill.entries())
    assert.ok(text === "old\n" || isNew(text, i), `f${i} is neither old nor new (${text.length} bytes)`);
  const restartsAfterKill = await fs.readFile(path.join(dir, "restarts"), "utf8").catch(() => "");
  if (restartsAfterKill === "") {
    const ledger = JSON.parse(await fs.readFile(path.join(stateDir, "notifications.json"), "utf8"));
    assert.deepEqual(
      ledger.entries.map((entry: { target: string }) => entry.target),
      ["execute[restart]"],
      "the intent was recorded before the wave",
    );
  }

  const again = node([galley, "push", "-i", "inventory.yaml", "./wave.ts", "--json"], dir);
  const second = watch(again);
  t.after(() => signal(again.pid!, "SIGKILL"));
  const ended = await second.exited;
  assert.equal(ended.code, 0, second.output.stdout + second.output.stderr);
  for (const [i, text] of (await contents()).entries()) assert.ok(isNew(text, i), `f${i} is new`);
  assert.equal(await fs.readFile(path.join(dir, "restarts"), "utf8"), "restarted\n", "delivered once");
  const strays = (await fs.readdir(path.join(dir, "out"))).filter((name) => name.includes("galley-tmp"));
  assert.deepEqual(strays, [], "no temp file left");
  const ledger = JSON.parse(await fs.readFile(path.join(stateDir, "notifications.json"), "utf8"));
  assert.deepEqual(ledger.entries, []);
  t.diagnostic(`${replaced} of ${count} files were replaced when the push was killed`);
});
