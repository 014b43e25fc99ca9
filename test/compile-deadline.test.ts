import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";

const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

// the real command, with a timeout of its own: a hang fails the test instead of holding the suite
function cli(args: string[], cwd: string, env: Record<string, string> = {}) {
  const started = Date.now();
  const result = spawnSync(process.execPath, [galley, ...args], {
    cwd,
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}

async function recipeFile(body: string): Promise<{ dir: string; file: string }> {
  const dir = await tempDir("galley-deadline-");
  const file = path.join(dir, "stuck.ts");
  await fs.writeFile(file, body);
  return { dir, file };
}

test("a recipe whose promise never settles fails at once with RECIPE_FAILED naming it (not Node's exit 13)", async () => {
  const { dir } = await recipeFile("export default () => new Promise(() => {});\n");
  const run = cli(["compile", "./stuck.ts"], dir);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /^error\[RECIPE_FAILED\]: recipe stuck\.ts \(stuck\.ts\) never finishes/m);
  assert.doesNotMatch(run.stderr, /Warning|unsettled|\n\s+at /);
  assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
});

test("a recipe that outlives the compile deadline (GALLEY_COMPILE_TIMEOUT) fails with RECIPE_FAILED", async () => {
  const { dir } = await recipeFile(
    "export default async () => { await new Promise((done) => setTimeout(done, 20_000)); };\n",
  );
  const run = cli(["compile", "./stuck.ts"], dir, { GALLEY_COMPILE_TIMEOUT: "1" });
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /error\[RECIPE_FAILED\]: recipe stuck\.ts \(stuck\.ts\) did not finish within 1 s/,
  );
  assert.ok(run.ms < 15_000, `took ${run.ms} ms: the recipe's timer held the process`);
  const bad = cli(["compile", "./stuck.ts"], dir, { GALLEY_COMPILE_TIMEOUT: "soon" });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /error\[USAGE\]: GALLEY_COMPILE_TIMEOUT=soon/);
});

test("a timer a recipe left behind that throws during the run ends it with RECIPE_FAILED naming the recipe and line", async () => {
  const state = await tempDir("galley-deadline-state-");
  const { dir } = await recipeFile(
    [
      "export default (r) => {",
      '  setTimeout(() => { throw new Error("late boom"); }, 0);',
      '  r.execute("wait", { command: "sleep 2" });',
      "};",
      "",
    ].join("\n"),
  );
  const run = cli(["apply", "./stuck.ts", "--state-dir", state], dir);
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /^error\[RECIPE_FAILED\]: recipe stuck\.ts \(stuck\.ts:2\) failed in code it left running .*: late boom$/m,
  );
  assert.doesNotMatch(run.stderr, /\n\s+at /);
  const json = cli(["apply", "./stuck.ts", "--state-dir", state, "--json"], dir);
  assert.equal(json.code, 2);
  assert.equal(JSON.parse(json.stdout.trim().split("\n").at(-1)!).error.code, "RECIPE_FAILED");
});

test("a finished command exits at once: an interval a recipe left running neither holds nor fails it", async () => {
  const { dir } = await recipeFile(
    'export default (r) => { setInterval(() => {}, 1000); r.file("/tmp/x", { content: "" }); };\n',
  );
  const run = cli(["compile", "./stuck.ts"], dir);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /file\[\/tmp\/x\]/);
  assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
});

test("a command left waiting on nothing (a resource type whose read never settles) ends with exit 3 and says so, not Node's 13", async () => {
  const { makeKitchen, recipe } = await import("./support/kitchen.ts");
  const state = await tempDir("galley-deadline-state-");
  const root = await makeKitchen({
    web: {
      resources: {
        stuck: `import { resourceType, v } from "galley";
export default resourceType({
  description: "never answers",
  properties: { path: v.string() },
  actions: ["create"],
  nameProperty: "path",
  read: () => new Promise(() => {}),
  diff: () => [],
  async apply() {},
});
`,
      },
    },
    app: { depends: { web: "*" }, recipes: { default: recipe('r.web_stuck("/tmp/galley-never");') } },
  });
  const run = cli(["apply", "app", "--state-dir", state], root);
  assert.equal(run.code, 3, run.stderr);
  assert.match(
    run.stderr,
    /^internal error: Error: the command waits on a promise that nothing is left to settle/m,
  );
  assert.doesNotMatch(run.stderr, /unsettled top-level await/);
});

test("a promise a recipe let fail unobserved is RECIPE_FAILED before anything is applied, not ignored", async () => {
  const state = await tempDir("galley-deadline-state-");
  const out = await tempDir("galley-deadline-out-");
  const { dir } = await recipeFile(
    [
      "export default (r) => {",
      '  Promise.reject(new Error("nobody awaits this"));',
      `  r.file(${JSON.stringify(`${out}/applied`)}, { content: "x" });`,
      "};",
      "",
    ].join("\n"),
  );
  const run = cli(["apply", "./stuck.ts", "--state-dir", state], dir);
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /^error\[RECIPE_FAILED\]: recipe stuck\.ts \(stuck\.ts:2\) .*: nobody awaits this$/m,
  );
  await assert.rejects(fs.access(`${out}/applied`), "nothing was applied");
  // compile is over in a moment: the failure is still reported before its catalog is printed
  const compiled = cli(["compile", "./stuck.ts"], dir);
  assert.equal(compiled.code, 2, compiled.stdout);
  assert.equal(compiled.stdout, "");
  assert.match(compiled.stderr, /^error\[RECIPE_FAILED\]: recipe stuck\.ts \(stuck\.ts:2\)/m);
});
