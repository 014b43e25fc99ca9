import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";
import { node, running, until, watch } from "./support/processes.ts";

// One run at a time on this machine: concurrent `galley apply` runs take the host's run lock in
// turn, a dead holder's lock is taken over, --wait 0 fails at once; and SIGTERM stops the command
// a run is running, which ends interrupted with its notifications kept.

const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));
const holder = fileURLToPath(new URL("./support/hold-run-lock.ts", import.meta.url));

/** Starts `galley ARGS…` and resolves with its exit code and output. */
function apply(args: string[], cwd: string) {
  const child = node([galley, "apply", ...args], cwd);
  const { output, exited } = watch(child);
  return { child, output, done: exited.then((end) => ({ ...end, ...output })) };
}

test("run lock: five concurrent applies on one host run the notified command once, without errors", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const kitchen = await makeKitchen({
    site: {
      recipes: {
        default: recipe(
          [
            `r.file("${out}/app.conf", { content: "port 80\\n", notifies: { action: "run", resource: "execute[restart]" } });`,
            `r.execute("restart", { command: "sleep 0.3; echo restarted >> ${out}/restarts", action: "nothing" });`,
          ].join("\n"),
        ),
      },
    },
  });
  const runs = await Promise.all(
    Array.from({ length: 5 }, () => apply(["site", "--state-dir", state], kitchen).done),
  );
  for (const run of runs) assert.equal(run.code, 0, run.stderr + run.stdout);
  assert.equal(await fs.readFile(`${out}/restarts`, "utf8"), "restarted\n");
  // the runs that waited said for whom
  const waited = runs.filter((run) =>
    /waiting for (the run of PID \d+ on .* since .*|another run)/.test(run.stderr),
  );
  assert.ok(waited.length >= 1, runs.map((r) => r.stderr).join("\n"));
});

test("run lock: two applies with different inputs leave the tree wholly one input's, never a mix", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const files = 150;
  const kitchen = await makeKitchen({
    tree: {
      recipes: {
        default: recipe(
          `for (let i = 0; i < ${files}; i++) r.file(\`${out}/f\${i}\`, { content: r.attrs.tree.value + "\\n" });`,
        ),
      },
      attributes: { "default.yaml": "tree:\n  value: none\n" },
    },
  });
  for (const value of ["a", "b"])
    await fs.writeFile(path.join(kitchen, `${value}.yaml`), `tree:\n  value: ${value}\n`);
  for (let pair = 0; pair < 4; pair++) {
    // each pair starts from the other input's tree, so both runs have every file to change
    const [first, second] = pair % 2 === 0 ? ["a", "b"] : ["b", "a"];
    const runs = await Promise.all(
      [first, second].map(
        (value) => apply(["tree", "--attrs", `${value}.yaml`, "--state-dir", state], kitchen).done,
      ),
    );
    for (const run of runs) {
      assert.equal(run.code, 0, run.stderr + run.stdout);
      assert.doesNotMatch(run.stdout + run.stderr, /RESOURCE_TYPE_ERROR/);
    }
    const contents = new Set<string>();
    for (let i = 0; i < files; i++) contents.add(await fs.readFile(`${out}/f${i}`, "utf8"));
    assert.equal(contents.size, 1, `pair ${pair}: a mix of ${[...contents].join(", ")}`);
  }
});

test("run lock: --wait 0 stops at once with RUN_LOCKED naming the holder; --wait N waits, then stops (or on SIGTERM)", async () => {
  const state = await tempDir();
  const kitchen = await makeKitchen({ noop: { recipes: { default: recipe("") } } });
  const child = node([holder, "local", state], kitchen);
  const { output } = watch(child);
  try {
    await until(() => output.stdout.includes("locked"), 15_000, `the holder (${output.stderr})`);
    const now = await apply(["noop", "--state-dir", state, "--wait", "0"], kitchen).done;
    assert.equal(now.code, 6, now.stderr);
    assert.match(
      now.stderr,
      new RegExp(
        `error\\[RUN_LOCKED\\]: .* is busy with the run of PID ${child.pid} on .* since .* \\(hold-run-lock\\)`,
      ),
    );
    assert.match(now.stderr, /--wait SECONDS/);
    const json = await apply(["noop", "--state-dir", state, "--wait", "0", "--json"], kitchen).done;
    assert.equal(JSON.parse(json.stdout).error.code, "RUN_LOCKED");
    const waited = await apply(["noop", "--state-dir", state, "--wait", "1"], kitchen).done;
    assert.equal(waited.code, 6);
    assert.match(waited.stderr, new RegExp(`^waiting for the run of PID ${child.pid} on .* since `, "m"));
    assert.match(waited.stderr, /after waiting 1 s/);
    // a run waiting for the lock stops at once on SIGTERM
    const waiting = apply(["noop", "--state-dir", state, "--wait", "60"], kitchen);
    await until(() => waiting.output.stderr.includes("waiting for"), 15_000, "the waiting line");
    const signalled = Date.now();
    waiting.child.kill("SIGTERM");
    const stopped = await waiting.done;
    assert.equal(stopped.code, 143, stopped.stderr);
    assert.match(stopped.stderr, /error\[INTERRUPTED\]: interrupted by SIGTERM/);
    assert.ok(Date.now() - signalled < 3000);
    const bad = await apply(["noop", "--state-dir", state, "--wait", "soon"], kitchen).done;
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /ARGS_INVALID/);
  } finally {
    child.kill("SIGKILL");
  }
});

test("run lock: the lock of an apply killed with SIGKILL is taken over at once", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const kitchen = await makeKitchen({
    slow: {
      recipes: {
        default: recipe(`r.execute("hold", { command: "echo $$ > ${out}/cmd.pid; exec sleep 30" });`),
      },
    },
    quick: { recipes: { default: recipe(`r.file("${out}/done", { content: "yes\\n" });`) } },
  });
  const slow = apply(["slow", "--state-dir", state], kitchen);
  try {
    await until(() => readOr(`${out}/cmd.pid`) !== "", 20_000, `the slow run (${slow.output.stderr})`);
    const busy = await apply(["quick", "--state-dir", state, "--wait", "0"], kitchen).done;
    assert.equal(busy.code, 6, busy.stderr);
    slow.child.kill("SIGKILL");
    await slow.done;
    const next = await apply(["quick", "--state-dir", state, "--wait", "10"], kitchen).done;
    assert.equal(next.code, 0, next.stderr);
    // exit 0 with --wait 10: the dead holder's lock was taken over, not waited out
    assert.equal(readOr(`${out}/done`), "yes");
  } finally {
    slow.child.kill("SIGKILL");
    // the command the killed run had started (SIGKILL cannot forward anything)
    const pid = Number(readOr(`${out}/cmd.pid`));
    if (pid) process.kill(pid, "SIGKILL");
  }
});

test("interrupt: SIGTERM or SIGINT during a long execute ends it and its children, exits 143 or 130, keeps the notification", async () => {
  // a background job of sh ignores SIGINT: there the grace period's SIGKILL ends it (5 s)
  for (const [name, code, withinMs] of [
    ["SIGTERM", 143, 4000],
    ["SIGINT", 130, 9000],
  ] as const) {
    const out = await tempDir();
    const state = await tempDir();
    const kitchen = await makeKitchen({
      long: {
        recipes: {
          default: recipe(
            [
              `r.file("${out}/app.conf", { content: "v1\\n", notifies: { action: "run", resource: "execute[restart]" } });`,
              `r.execute("work", { command: "sleep 60 & echo $! > ${out}/sleep.pid; echo $$ > ${out}/sh.pid; wait" });`,
              `r.file("${out}/after", { content: "x\\n" });`,
              `r.execute("restart", { command: "echo restarted >> ${out}/restarts", action: "nothing" });`,
            ].join("\n"),
          ),
        },
      },
    });
    const run = apply(["long", "--state-dir", state], kitchen);
    await until(() => readOr(`${out}/sleep.pid`) !== "", 20_000, `the long command (${run.output.stderr})`);
    const pids = [Number(readOr(`${out}/sh.pid`)), Number(readOr(`${out}/sleep.pid`))];
    const started = Date.now();
    run.child.kill(name);
    const ended = await run.done;
    try {
      assert.equal(ended.code, code, ended.stderr + ended.stdout);
      assert.ok(Date.now() - started < withinMs, `${name}: the command ended in time`);
      for (const pid of pids) assert.equal(running(pid), false, `process ${pid} still runs`);
      assert.match(ended.stdout, /^interrupted: 1 changed, 0 unchanged, 1 failed, 2 skipped/m);
      assert.match(
        ended.stdout,
        /kept for the next run: execute\[restart\] run \(from file\[.*app\.conf\]\)/,
      );
      assert.match(ended.stderr, /interrupted: 2 resources not run; 1 notification kept for the next run/);
      assert.equal(readOr(`${out}/after`), "", "no resource ran after the signal");
      const pending = JSON.parse(await fs.readFile(path.join(state, "notifications.json"), "utf8"));
      assert.deepEqual(
        pending.entries.map((n: { target: string }) => n.target),
        ["execute[restart]"],
      );
    } finally {
      for (const pid of pids) if (running(pid)) process.kill(pid, "SIGKILL");
    }
  }
});

function readOr(file: string): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return "";
  }
}
