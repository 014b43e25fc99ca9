import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { becomeMarker, commandLine, shellQuote } from "./remote-command.ts";

// The command lines are run by a real local sh, as sshd runs them with the login shell.
const sh = (line: string) => execFileSync("sh", ["-c", line], { encoding: "utf8" });

test("remote command: every argv survives the shell unchanged", () => {
  const words = [
    "plain",
    "two words",
    "it's",
    `"double"`,
    "$HOME",
    "`id`",
    "a\nb",
    "*",
    "-n",
    "",
    "é",
    "\\",
    "!x",
  ];
  const printed = sh(commandLine(["printf", "%s\\0", ...words], {}, { login: "root" }));
  assert.deepEqual(printed.split("\0").slice(0, -1), words);
  assert.equal(shellQuote("/etc/app.conf"), "/etc/app.conf");
  assert.equal(shellQuote("it's"), `'it'\\''s'`);
});

test("remote command: cwd, env and user are applied in the one command line", () => {
  const line = commandLine(
    ["sh", "-c", 'printf "%s|%s|%s" "$PWD" "$A" "$(id -un)"'],
    { cwd: "/tmp", env: { A: "x'y z" }, user: "nobody" },
    { login: "root" },
  );
  assert.equal(sh(line), "/tmp|x'y z|nobody");
  // running as the current user needs no switch
  assert.doesNotMatch(commandLine(["id"], { user: "root" }, { login: "root" }), /runuser|sudo/);
  assert.match(commandLine(["id"], { user: "app" }, { login: "deploy" }), /sudo -n -u app --/);
  assert.match(
    commandLine(["id"], { user: "app" }, { login: "deploy", become: "root" }),
    /runuser -u app --/,
  );
});

test("remote command: a missing cwd exits 127 like a local spawn; become wraps in sudo with a marker", () => {
  const result = execFileSync(
    "sh",
    ["-c", `${commandLine(["true"], { cwd: "/nonexistent-galley" }, { login: "root" })}; echo $?`],
    {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    },
  );
  assert.equal(result.trim(), "127");
  // root may sudo to itself without a password: the real sudo runs the line
  const become = commandLine(["id", "-un"], { user: "nobody" }, { login: "deploy", become: "root" });
  assert.match(become, /^sudo -n -u root -- sh -c /);
  const run = spawnSync("sh", ["-c", become], { encoding: "utf8" });
  assert.deepEqual([run.stdout, run.stderr], ["nobody\n", becomeMarker]);
});

test("remote command: a timeout kills the command's whole process group", async () => {
  const pidFile = path.join(await tempDir(), "pid");
  const line = commandLine(
    ["sh", "-c", `sleep 5 & echo $! > ${pidFile}; sleep 5`],
    { timeoutMs: 200 },
    { login: "root" },
  );
  const status = execFileSync("sh", ["-c", `${line}; echo $?`], { encoding: "utf8" }).trim();
  assert.equal(status, "137");
  const background = Number(await fs.readFile(pidFile, "utf8"));
  assert.ok(!(await running(background)), "the background sleep was killed too");
});

/** Whether a process is alive (a zombie waiting for its reaper is not). */
async function running(pid: number): Promise<boolean> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
}
