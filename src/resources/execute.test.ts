import * as v from "valibot";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { displayCommand, execute } from "./execute.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

const host = new LocalHost();

const context = { stateDir: "/nonexistent" };

/** read, diff and apply once, as the engine does; returns the diff. */
async function converge(props: Record<string, unknown>) {
  const desired = await prepare(execute, props);
  const current = await execute.read(host, desired);
  const changes = execute.diff(current, desired, "run");
  if (changes.length > 0) await execute.apply(host, desired, "run", current, context);
  return changes;
}

test("execute: runs once, then `creates` keeps it from running again", async () => {
  const dir = await tempDir("galley-t-exec-");
  const log = path.join(dir, "log");
  const marker = path.join(dir, "done");
  const props = { command: `echo ran >> ${log} && touch ${marker}`, creates: marker };
  const first = await convergeTwice(host, execute, props);
  assert.deepEqual(first, [{ property: "command", to: props.command }]);
  assert.deepEqual(await convergeTwice(host, execute, props), []);
  assert.equal(await fs.readFile(log, "utf8"), "ran\n");
});

test("execute: a relative `creates` is looked up in cwd", async () => {
  const dir = await tempDir("galley-t-exec-");
  await fs.writeFile(path.join(dir, "built"), "");
  assert.deepEqual(await converge({ command: "false", cwd: dir, creates: "built" }), []);
  assert.throws(
    () => v.parse(execute.schema, { command: "true", creates: "built" }),
    /relative `creates` needs `cwd`/,
  );
});

test("execute: without `creates` it runs at every converge", async () => {
  const dir = await tempDir("galley-t-exec-");
  const log = path.join(dir, "log");
  await converge({ command: `echo x >> ${log}` });
  await converge({ command: `echo x >> ${log}` });
  assert.equal(await fs.readFile(log, "utf8"), "x\nx\n");
});

test("execute: an argv list runs without a shell, a string runs with sh -c", async () => {
  const dir = await tempDir("galley-t-exec-");
  const out = path.join(dir, "out");
  // with a shell, $HOME would expand and > would redirect; as argv they are literal arguments
  await converge({ command: ["sh", "-c", 'printf %s "$1" > "$2"', "sh", "$HOME > literal", out] });
  assert.equal(await fs.readFile(out, "utf8"), "$HOME > literal");
  await converge({ command: `printf %s "$((1 + 2))" > ${out}` });
  assert.equal(await fs.readFile(out, "utf8"), "3");
  assert.equal(displayCommand(["printf", "%s", "a b", "it's"]), "printf %s 'a b' 'it'\\''s'");
});

test("execute: cwd and env reach the command", async () => {
  const dir = await tempDir("galley-t-exec-");
  await converge({
    command: 'printf %s "$GALLEY_T_VALUE" > here',
    cwd: dir,
    env: { GALLEY_T_VALUE: "from env" },
  });
  assert.equal(await fs.readFile(path.join(dir, "here"), "utf8"), "from env");
});

test("execute: umask applies to the files the command creates", async () => {
  const dir = await tempDir("galley-t-exec-");
  await converge({ command: ["touch", path.join(dir, "f")], umask: "077" });
  assert.equal((await fs.stat(path.join(dir, "f"))).mode & 0o777, 0o600);
});

test("execute: runs as another user", {
  skip: process.getuid?.() !== 0 && "needs root to switch users",
}, async () => {
  const dir = await tempDir("galley-t-exec-");
  await fs.chmod(dir, 0o777);
  const out = path.join(dir, "whoami");
  await converge({ command: `id -un > ${out}`, user: "nobody" });
  assert.equal((await fs.readFile(out, "utf8")).trim(), "nobody");
  assert.equal((await fs.stat(out)).uid, 65534);
});

test("execute: exit codes listed in `returns` are success", async () => {
  await converge({ command: "exit 3", returns: [0, 3] });
  await converge({ command: "exit 0", returns: [0, 3] });
});

test("execute: an unexpected exit code fails with the code and the end of stderr", async () => {
  const command = "echo progress; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo line$i >&2; done; exit 4";
  await assert.rejects(converge({ command }), (error: Error & { code?: string }) => {
    assert.equal(error.code, "EXEC_FAILED");
    assert.match(error.message, /exited 4 \(expected 0\)/);
    const output = error.message.slice(error.message.indexOf(":\n") + 2);
    assert.equal(output, "line3\nline4\nline5\nline6\nline7\nline8\nline9\nline10\nline11\nline12");
    return true;
  });
});

test("execute: stdout is shown when stderr is empty", async () => {
  await assert.rejects(
    converge({ command: "echo only-stdout; exit 2", returns: [0, 1] }),
    /exited 2 \(expected 0 or 1\):\nonly-stdout/,
  );
});

test("execute: a command that does not exist fails clearly", async () => {
  await assert.rejects(
    converge({ command: ["galley-t-no-such-command"] }),
    /exited 127.*\n.*galley-t-no-such-command/,
  );
});

test("execute: a timeout kills the command and its children and says so", async () => {
  const dir = await tempDir("galley-t-exec-");
  const late = path.join(dir, "late");
  // the child sleep holds the output pipes: only a process-group kill ends it
  await assert.rejects(converge({ command: `sleep 30; touch ${late}`, timeout: 0.3 }), (error: Error) => {
    assert.match(error.message, /timed out after 0\.3 s/);
    return true;
  });
  await assert.rejects(fs.stat(late));
});

test("execute: rejects unknown properties and bad values by name", () => {
  assert.match(JSON.stringify(v.safeParse(execute.schema, { command: "x", cmd: "y" }).issues), /cmd/);
  assert.match(JSON.stringify(v.safeParse(execute.schema, { command: "x", returns: "0" }).issues), /returns/);
  assert.match(JSON.stringify(v.safeParse(execute.schema, { command: [] }).issues), /command/);
});
