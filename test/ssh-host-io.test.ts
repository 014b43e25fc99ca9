import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { converge } from "../src/core/converge.ts";
import { compileRun } from "../src/cookbooks/solo.ts";
import { LocalHost } from "../src/hosts/local.ts";
import type { SshHost } from "../src/hosts/ssh.ts";
import { tempDir } from "../src/resources/testing.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";
import { sharedDir, sshdForTests } from "./support/sshd.ts";

// Commands, files, reads, facts and converges over SSH, compared with LocalHost on the same
// machine: the SSH server is this machine's own OpenSSH on 127.0.0.1.

const local = new LocalHost();
const { connect } = sshdForTests();

test("ssh: connects with a key and a strict known_hosts; exec behaves like a local exec", async (t) => {
  const host = await connect(t);
  const dir = await sharedDir();
  const cases: [string[], Parameters<SshHost["exec"]>[1]][] = [
    [["echo", 'it\'s a "test" $HOME `x`'], {}],
    [["pwd"], { cwd: dir }],
    [["sh", "-c", 'printf "%s|%s" "$A" "$B"'], { env: { A: "one two", B: "it's" } }],
    [["cat"], { input: "line 1\nline 2\0binary" }],
    [["sh", "-c", "exit 3"], {}],
    [["sh", "-c", "kill -TERM $$"], {}],
    [["id", "-un"], { user: "galleyssh" }],
    [["sh", "-c", "echo out; echo err >&2"], {}],
  ];
  for (const [argv, options] of cases) {
    const remote = await host.exec(argv, options);
    const here = await local.exec(argv, options);
    assert.deepEqual(
      { exitCode: remote.exitCode, stdout: remote.stdout, stderr: remote.stderr, timedOut: remote.timedOut },
      { exitCode: here.exitCode, stdout: here.stdout, stderr: here.stderr, timedOut: here.timedOut },
      `${argv.join(" ")} ${JSON.stringify(options)}`,
    );
  }
  assert.equal((await host.exec(["no-such-command-galley"])).exitCode, 127);
  assert.equal((await host.exec(["pwd"], { cwd: path.join(dir, "missing") })).exitCode, 127);
  const pidFile = path.join(dir, "pid");
  const slow = await host.exec(["sh", "-c", `sleep 30 & echo $! > ${pidFile}; sleep 30; echo never`], {
    timeoutMs: 300,
  });
  assert.equal(slow.timedOut, true);
  assert.equal(slow.exitCode, 137);
  assert.equal(slow.stdout, "");
  // the whole process group died, the background sleep too
  const background = Number(await fs.readFile(pidFile, "utf8"));
  assert.ok(!(await running(background)));
});

test("ssh: commands one after the other share one remote session, as root and with become; a killed command ends alone", async (t) => {
  for (const overrides of [{}, { user: "galleyssh", become: true }]) {
    const host = await connect(t, overrides);
    const channels = host.stats.channels;
    const commands = host.stats.commands;
    for (let i = 0; i < 40; i++) {
      const result = await host.exec(["sh", "-c", `echo out${i}; printf err${i} >&2; exit ${i % 5}`]);
      assert.deepEqual([result.stdout, result.stderr, result.exitCode], [`out${i}\n`, `err${i}`, i % 5]);
    }
    // output without a final newline, with NULs, and a stdin the command does not read
    const binary = await host.exec(["printf", "a\\000b"], { input: "never read" });
    assert.deepEqual(Buffer.from(binary.stdout), Buffer.from("a\0b"));
    const killed = await host.exec(["sh", "-c", "kill -KILL $$"]);
    assert.equal(killed.exitCode, 137);
    assert.equal((await host.exec(["id", "-un"])).stdout, "root\n");
    assert.equal(host.stats.commands - commands, 43);
    assert.ok(
      host.stats.channels - channels <= 1,
      `${host.stats.channels - channels} channels for 43 commands`,
    );
  }
});

test("ssh: many commands and transfers at once share the connection within sshd's MaxSessions", async (t) => {
  const host = await connect(t);
  const dir = await sharedDir();
  const results = await Promise.all([
    ...Array.from({ length: 30 }, (_, i) => host.exec(["sh", "-c", `sleep 0.1; echo ${i}`])),
    ...Array.from({ length: 10 }, (_, i) => host.writeFile(path.join(dir, `f${i}`), `${i}`)),
  ]);
  for (const [i, result] of results.slice(0, 30).entries()) {
    assert.equal((result as { stdout: string }).stdout, `${i}\n`);
  }
  assert.equal(await fs.readFile(path.join(dir, "f9"), "utf8"), "9");
  await host.close();
  await assert.rejects(host.exec(["true"]), /closed/);
  assert.equal(await host.closed, undefined, "a close is not a loss");
});

test("ssh: writeFile is atomic and sets mode and owner, as root and with become", async (t) => {
  const dir = await sharedDir();
  const root = await connect(t);
  const become = await connect(t, { user: "galleyssh", become: true });
  const data = Buffer.from([0, 1, 2, 255, 10, 39, 34]);
  for (const [host, name] of [
    [root, "as-root"],
    [become, "as-become"],
  ] as const) {
    const file = path.join(dir, name);
    await fs.writeFile(file, "old");
    const before = (await fs.stat(file)).ino;
    await host.writeFile(file, data, { mode: 0o640, owner: "nobody", group: "nogroup" });
    assert.deepEqual(await fs.readFile(file), data);
    const stat = await fs.stat(file);
    assert.notEqual(stat.ino, before, "replaced by a rename, not rewritten in place");
    assert.equal(stat.mode & 0o7777, 0o640);
    assert.deepEqual([stat.uid, stat.gid], [65534, 65534]);
    await host.writeFile(file, "setuid", { mode: 0o4755, owner: "root" });
    assert.equal((await fs.stat(file)).mode & 0o7777, 0o4755);
    await host.writeFile(path.join(dir, `${name}-plain`), "");
    assert.equal((await fs.stat(path.join(dir, `${name}-plain`))).mode & 0o777, 0o644);
    await assert.rejects(host.writeFile(path.join(dir, "missing", "f"), "x"), /APPLY_FAILED|cannot write/);
    await assert.rejects(
      host.writeFile(path.join(dir, "x"), "x", { owner: "no-such-user-galley" }),
      /invalid user/,
    );
  }
  // a root-only directory: only the become host can write there
  const closed = await tempDir();
  await become.writeFile(path.join(closed, "secret"), "s", { mode: 0o600 });
  assert.equal(await fs.readFile(path.join(closed, "secret"), "utf8"), "s");
  assert.deepEqual(
    (await fs.readdir(dir)).filter((n) => n.includes("galley")),
    [],
    "no temp file left",
  );
  // the session's private directory (its stdin copies) goes when the session ends
  const sessions = (await fs.readdir("/tmp")).filter((n) => n.startsWith("galley-session-"));
  await become.close();
  await root.close();
  for (let i = 0; i < 50; i++) {
    const left = (await fs.readdir("/tmp")).filter((n) => n.startsWith("galley-session-"));
    if (left.length < sessions.length) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const after = (await fs.readdir("/tmp")).filter((n) => n.startsWith("galley-session-"));
  assert.ok(after.length < sessions.length, "the session dirs are removed on close");
});

test("ssh: with become, commands run as root; ExecOptions.user switches through sudo", async (t) => {
  const host = await connect(t, { user: "galleyssh", become: true });
  assert.equal((await host.exec(["id", "-un"])).stdout, "root\n");
  assert.equal((await host.exec(["id", "-un"], { user: "nobody" })).stdout, "nobody\n");
  assert.equal((await host.exec(["id", "-un"], { user: "galleyssh" })).stdout, "galleyssh\n");
  const cat = await host.exec(["sh", "-c", "cat; echo $X >&2; exit 4"], { input: "in", env: { X: "x" } });
  assert.deepEqual([cat.stdout, cat.stderr, cat.exitCode], ["in", "x\n", 4]);
  assert.equal((await host.facts()).user.name, "root");
  const plain = await connect(t, { user: "galleyssh" });
  assert.equal((await plain.facts()).user.name, "galleyssh");
});

test("ssh: stat and readFile agree with LocalHost on the same files, as root and with become", async (t) => {
  const dir = await sharedDir();
  const paths = await makeTree(dir);
  for (const host of [await connect(t), await connect(t, { user: "galleyssh", become: true })]) {
    const before = host.stats.commands;
    const [remoteStats, localStats] = await Promise.all([
      settle(paths, (p) => host.stat(p)),
      settle(paths, (p) => local.stat(p)),
    ]);
    assert.deepEqual(remoteStats, localStats);
    const [remoteReads, localReads] = await Promise.all([
      settle(paths, (p) => host.readFile(p)),
      settle(paths, (p) => local.readFile(p)),
    ]);
    assert.deepEqual(remoteReads, localReads);
    // every path was read in one turn: one find and one tar, plus one more for the unreadable dir alone
    assert.ok(host.stats.commands - before <= 3, `${host.stats.commands - before} commands`);
  }
});

test("ssh: a path sudo-less login cannot reach fails alone; the rest of its batch is answered", async (t) => {
  const dir = await sharedDir();
  const closed = path.join(dir, "closed");
  await fs.mkdir(closed, { mode: 0o700 });
  await fs.writeFile(path.join(closed, "f"), "x");
  await fs.writeFile(path.join(dir, "open"), "open");
  const host = await connect(t, { user: "galleyssh" });
  const [denied, open, missing, read, unread] = await Promise.allSettled([
    host.stat(path.join(closed, "f")),
    host.stat(path.join(dir, "open")),
    host.stat(path.join(dir, "missing")),
    host.readFile(path.join(dir, "open")),
    host.readFile(path.join(closed, "f")),
  ]);
  assert.equal(denied.status, "rejected");
  assert.match(String((denied as PromiseRejectedResult).reason), /Permission denied/);
  assert.equal(open.status === "fulfilled" && open.value?.type, "file");
  assert.deepEqual(missing, { status: "fulfilled", value: undefined });
  assert.equal(read.status === "fulfilled" && Buffer.from(read.value!).toString(), "open");
  assert.equal(unread.status, "rejected");
});

test("ssh: facts match LocalHost's on the same machine, gathered by the first session as it starts", async (t) => {
  const host = await connect(t);
  const before = host.stats.commands;
  const remote = await host.facts();
  const here = await local.facts();
  // no command of their own: the session's exec line carries them
  assert.equal(host.stats.commands - before, 0);
  for (const field of ["hostname", "os", "arch", "cpus", "init", "user", "memoryMb", "addresses"] as const) {
    assert.deepEqual(remote[field], here[field], field);
  }
  assert.equal(await host.facts(), remote, "cached");
});

test("ssh: 2000 stats and 1000 reads asked in one turn take a handful of commands", async (t) => {
  const dir = await sharedDir();
  const files = Array.from({ length: 1000 }, (_, i) => path.join(dir, `file-${i}-${"x".repeat(40)}`));
  await Promise.all(files.map((file, i) => fs.writeFile(file, `content ${i}\n`)));
  const missing = files.map((file) => `${file}.missing`);
  const host = await connect(t);
  const before = host.stats.commands;
  const [stats, reads] = await Promise.all([
    Promise.all([...files, ...missing].map((file) => host.stat(file))),
    Promise.all(files.map((file) => host.readFile(file))),
  ]);
  const commands = host.stats.commands - before;
  assert.ok(commands <= 4, `${commands} commands`);
  assert.equal(stats.filter((s) => s?.type === "file").length, 1000);
  assert.equal(stats.filter((s) => s === undefined).length, 1000);
  for (const [i, data] of reads.entries()) assert.equal(Buffer.from(data!).toString(), `content ${i}\n`);
});

test("ssh: converging a catalog twice over SSH changes nothing the second time", async (t) => {
  const out = await sharedDir();
  const state = await tempDir();
  const body = `
    r.directory("${out}/etc", { mode: "0750" });
    r.file("${out}/etc/app.conf", { content: "port = 80\\n", mode: "0640", owner: "nobody" });
    r.file("${out}/etc/empty", { content: "" });
    r.link("${out}/current", { to: "${out}/etc" });
    r.execute("marker", { command: "touch ${out}/ran", creates: "${out}/ran" });`;
  const kitchen = await makeKitchen({ app: { recipes: { default: recipe(body) } } });
  for (const overrides of [{}, { user: "galleyssh", become: true }]) {
    const host = await connect(t, overrides);
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const { catalog, types } = await compileRun({
        runList: ["app"],
        cookbooksDir: path.join(kitchen, "cookbooks"),
        attributeFiles: [],
        host,
      });
      runs.push(
        await converge(catalog, host, {
          mode: "apply",
          stateDir: state,
          types,
          concurrency: host.readConcurrency,
        }),
      );
    }
    assert.equal(runs[0]!.status, "ok", JSON.stringify(runs[0]!.resources));
    assert.equal(runs[1]!.status, "ok");
    assert.equal(runs[1]!.summary.changed, 0, JSON.stringify(runs[1]!.resources));
    await fs.rm(path.join(out, "etc"), { recursive: true });
    await fs.rm(path.join(out, "ran"));
    await fs.rm(path.join(out, "current"));
  }
});

test("ssh: after an interrupted run, temp files are swept in one command; the ledger delivers and is cleared", async (t) => {
  for (const overrides of [{}, { user: "galleyssh", become: true }]) {
    const out = await sharedDir();
    const state = await tempDir();
    const host = await connect(t, overrides);
    // what a killed run leaves: its marker, and temp files beside managed files and in the backup tree
    await fs.mkdir(path.join(state, "converging"), { recursive: true });
    await fs.mkdir(path.join(state, "backup", out, "d1"), { recursive: true });
    const strays = [
      path.join(out, "d0", ".f0.galley-tmp-0a1b2c3d"),
      path.join(out, "d1", ".f1.galley-tmp-verify"),
      path.join(state, "backup", out, "d1", ".f1.galley-tmp-20261203T100000"),
      path.join(state, ".notifications.json.galley-tmp-99aa88bb"),
    ];
    const dirs = Array.from({ length: 12 }, (_, i) => path.join(out, `d${i}`));
    for (const dir of dirs) await fs.mkdir(dir, { recursive: true });
    const body = `
      ${dirs.map((dir, i) => `r.file("${dir}/f${i}", { content: "${i}"${i < 4 ? `, notifies: { action: "run", resource: "execute[restart]", timing: "${i % 2 ? "delayed" : "immediate"}" }` : ""} });`).join("\n")}
      r.execute("restart", { command: "echo restarted >> ${out}/log", action: "nothing" });`;
    const kitchen = await makeKitchen({ app: { recipes: { default: recipe(body) } } });
    const { catalog, types } = await compileRun({
      runList: ["app"],
      cookbooksDir: path.join(kitchen, "cookbooks"),
      attributeFiles: [],
      host,
    });
    const { sweepTempFiles } = await import("../src/core/temp-files.ts");
    const before = host.stats.commands;
    assert.deepEqual(await sweepTempFiles(host, dirs, [path.join(state, "backup")]), []);
    assert.equal(host.stats.commands - before, 1, "one command sweeps every folder");
    for (const stray of strays) await fs.writeFile(stray, "half");
    await fs.writeFile(path.join(out, "d0", "keep.galley-tmp-x"), "not hidden: not ours");

    const report = await converge(catalog, host, { mode: "apply", stateDir: state, types });

    assert.equal(report.status, "ok", JSON.stringify(report.resources));
    assert.deepEqual(report.tempFilesRemoved?.sort(), strays.sort());
    assert.equal(
      await fs.readFile(path.join(out, "d0", "keep.galley-tmp-x"), "utf8"),
      "not hidden: not ours",
    );
    // two immediate deliveries and one delayed
    assert.equal((await fs.readFile(path.join(out, "log"), "utf8")).split("\n").length - 1, 3);
    const ledger = JSON.parse(await fs.readFile(path.join(state, "notifications.json"), "utf8"));
    assert.deepEqual(ledger.entries, []);
    await assert.rejects(fs.stat(path.join(state, "converging")));
    assert.deepEqual((await fs.readdir(state)).sort(), ["backup", "notifications.json"]);
  }
});

async function makeTree(dir: string): Promise<string[]> {
  const p = (name: string) => path.join(dir, name);
  await fs.writeFile(p("plain"), "plain text\n");
  await fs.writeFile(p("empty"), "");
  await fs.writeFile(p("binary"), Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256)));
  await fs.writeFile(p("big"), Buffer.alloc(3 * 1024 * 1024, "galley\n"));
  await fs.symlink("plain", p("link"));
  await fs.symlink("nowhere", p("dangling"));
  await fs.mkdir(p("dir"));
  await fs.symlink("dir", p("dirlink"));
  await fs.writeFile(p("name with spaces"), "s");
  await fs.writeFile(p(`it's "quoted" $x`), "q");
  await fs.writeFile(p("new\nline"), "n\nl\n");
  await fs.writeFile(p("é ü"), "unicode");
  await fs.writeFile(p("x".repeat(200)), "long");
  await fs.writeFile(p("-dash"), "dash");
  await fs.writeFile(p("suid"), "#!/bin/sh\n", { mode: 0o4755 });
  await fs.chmod(p("suid"), 0o4755);
  await fs.writeFile(p("nobody"), "n");
  await fs.chown(p("nobody"), 65534, 65534);
  await fs.writeFile(p("numeric"), "n");
  await fs.chown(p("numeric"), 54321, 54321);
  await fs.link(p("plain"), p("hardlink"));
  await fs.writeFile(p("secret"), "root only", { mode: 0o600 });
  return [
    ...["plain", "empty", "binary", "big", "link", "dangling", "dir", "dir/", "dirlink", "name with spaces"],
    ...[
      `it's "quoted" $x`,
      "new\nline",
      "é ü",
      "x".repeat(200),
      "-dash",
      "suid",
      "nobody",
      "numeric",
      "hardlink",
    ],
    ...["secret", "missing", "plain/below"],
  ].map(p);
}

async function settle<T>(paths: string[], read: (p: string) => Promise<T>) {
  const results = await Promise.allSettled(paths.map(read));
  return results.map((r, i) => [
    paths[i],
    r.status === "fulfilled" ? (r.value instanceof Uint8Array ? Buffer.from(r.value) : r.value) : "error",
  ]);
}

async function running(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}

test("ssh: a directory with its mode and owner, and a symlink, each take one command; a failure names the path", async (t) => {
  const dir = await sharedDir();
  const host = await connect(t);
  const { mkdir, symlink } = await import("../src/core/fsops.ts");
  let before = host.stats.commands;
  await mkdir(host, path.join(dir, "a", "b"), {
    recursive: true,
    mode: 0o750,
    owner: "galleyssh",
    group: "root",
  });
  assert.equal(host.stats.commands - before, 1);
  const made = await local.stat(path.join(dir, "a", "b"));
  assert.deepEqual(
    [made?.type, made?.mode, made?.owner, made?.group],
    ["directory", 0o750, "galleyssh", "root"],
  );
  before = host.stats.commands;
  await symlink(host, "a/b", path.join(dir, "link"));
  await symlink(host, "a", path.join(dir, "link"));
  assert.equal(host.stats.commands - before, 2);
  assert.equal(await fs.readlink(path.join(dir, "link")), "a");
  await assert.rejects(
    mkdir(host, path.join(dir, "link", "x", "y"), { owner: "no-such-user-here" }),
    (error: Error & { code?: string }) =>
      error.code === "EXEC_FAILED" &&
      error.message.includes(`mkdir ${path.join(dir, "link", "x", "y")} exited`),
  );
});
