import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { isTempName } from "../src/core/temp-files.ts";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";
import { makeKitchen } from "./support/kitchen.ts";

const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));
const files = 24;
const trials = 40;
const budgetMs = 80_000;

// every third file notifies its own command immediately; the others one command, delayed. Each
// command writes the md5 of what it saw: after a recovery run, the last line of each log must be
// the md5 of the file's (files') final content, or a notification was lost
const recipeText = (out: string) => `export default async function (r) {
  const v = r.attrs.kill.version;
  const delayed = [];
  for (let d = 0; d < 3; d++) r.directory("${out}/d" + d, {});
  for (let i = 0; i < ${files}; i++) {
    const file = "${out}/d" + (i % 3) + "/f" + i;
    const content = (v + " " + i + " ").repeat(2000 + i * 100) + "\\n";
    if (i % 3 === 0) {
      r.file(file, { content, notifies: { action: "run", resource: "execute[reload " + i + "]", timing: "immediate" } });
      r.execute("reload " + i, { command: "md5sum < " + file + " | cut -c1-32 >> ${out}/reload-" + i + ".log", action: "nothing" });
    } else {
      r.file(file, { content, notifies: { action: "run", resource: "execute[restart]" } });
      delayed.push(file);
    }
  }
  r.execute("restart", { command: "cat " + delayed.join(" ") + " | md5sum | cut -c1-32 >> ${out}/restart.log", action: "nothing" });
}
`;

function content(version: string, i: number): string {
  return `${`${version} ${i} `.repeat(2000 + i * 100)}\n`;
}

function md5(text: string): string {
  return createHash("md5").update(text).digest("hex");
}

/**
 * Starts `galley apply`, and kills it (SIGKILL) `delayMs` after it printed its `line`-th line (the
 * first is printed when compile is done, then one per resource changed): counting lines, not
 * milliseconds, puts the kills all over the converge however fast or busy the machine is.
 */
function applyKilledAfter(
  args: string[],
  cwd: string,
  line: number,
  delayMs: number,
): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [galley, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "ignore"],
    });
    let timer: NodeJS.Timeout | undefined;
    let seen = 0;
    child.stdout.on("data", (chunk: Buffer) => {
      if (timer) return;
      for (const byte of chunk) if (byte === 10) seen += 1;
      if (seen >= line) timer = setTimeout(() => child.kill("SIGKILL"), delayMs);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === "SIGKILL", code });
    });
  });
}

/** Every path below `dir` whose name is one of Galley's temp files. */
async function strays(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => isTempName(e.name) || e.name.includes(".galley-"))
    .map((e) => path.join(e.parentPath, e.name));
}

test(`kill -9 at random points of a converge, ${trials} times: no half-written file, no lost notification, no stray temp file`, {
  timeout: 90_000,
}, async () => {
  const started = performance.now();
  const out = await tempDir("galley-kill-");
  const state = await tempDir("galley-kill-state-");
  const kitchen = await makeKitchen({ app: { recipes: { default: recipeText(out) } } });
  for (const v of ["A", "B"])
    await fs.writeFile(path.join(kitchen, `${v}.json`), JSON.stringify({ kill: { version: v } }));
  const args = (v: string) => ["apply", "app", "--attrs", `${v}.json`, "--state-dir", state, "--no-diff"];
  const first = cli(args("A"), kitchen);
  assert.equal(first.code, 0, first.stderr);
  let version = "A";
  let killedCount = 0;
  let trial = 0;
  for (; trial < trials; trial++) {
    // a busy machine gets fewer trials, not a failure; enough of them are still required below
    if (performance.now() - started > budgetMs) break;
    const old = version;
    version = old === "A" ? "B" : "A";
    // after the header and 0 to files-1 changed resources, then 0 to 4 ms on: mid-write, mid-ledger, mid-notification
    const line = 1 + Math.floor(Math.random() * files);
    const delay = Math.random() * 4;
    const { killed } = await applyKilledAfter(args(version), kitchen, line, delay);
    if (killed) killedCount++;
    for (let i = 0; i < files; i++) {
      const text = await fs.readFile(path.join(out, `d${i % 3}`, `f${i}`), "utf8");
      assert.ok(
        text === content(old, i) || text === content(version, i),
        `trial ${trial} (killed ${delay.toFixed(1)} ms after line ${line}): f${i} is neither old nor new content (${text.length} bytes)`,
      );
    }
    const recovery = cli(args(version), kitchen);
    assert.equal(
      recovery.code,
      0,
      `trial ${trial}: the recovery run failed: ${recovery.stdout}${recovery.stderr}`,
    );
    for (let i = 0; i < files; i += 3) {
      const log = (await fs.readFile(path.join(out, `reload-${i}.log`), "utf8")).trim().split("\n");
      assert.equal(
        log.at(-1),
        md5(content(version, i)),
        `trial ${trial}: lost the immediate notification of f${i}`,
      );
    }
    const delayed = Array.from({ length: files }, (_, i) => i).filter((i) => i % 3 !== 0);
    const restart = (await fs.readFile(path.join(out, "restart.log"), "utf8")).trim().split("\n");
    assert.equal(
      restart.at(-1),
      md5(delayed.map((i) => content(version, i)).join("")),
      `trial ${trial}: lost the delayed notification`,
    );
    assert.deepEqual(
      [...(await strays(out)), ...(await strays(state))],
      [],
      `trial ${trial}: stray temp files`,
    );
  }
  assert.ok(trial >= 10, `only ${trial} trials in ${budgetMs} ms`);
  assert.ok(killedCount >= trial / 2, `only ${killedCount} of ${trial} runs were killed before they ended`);
});
