import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";
import { makeKitchen, recipe } from "./support/kitchen.ts";

const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

function cli(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [galley, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("cli: apply --json prints one report object; a second apply changes nothing", async () => {
  const out = await tempDir();
  const state = await tempDir();
  const kitchen = await makeKitchen({
    site: {
      recipes: {
        default: recipe(`r.file("${out}/motd", { content: "hello\\n" });\nr.directory("${out}/d", {});`),
      },
    },
  });
  const first = cli(["apply", "site", "--json", "--state-dir", state], kitchen);
  assert.equal(first.code, 0, first.stderr);
  const report = JSON.parse(first.stdout);
  assert.equal(report.status, "ok");
  assert.deepEqual(report.summary, {
    changed: 2,
    unchanged: 0,
    failed: 0,
    skipped: 0,
    pending: 0,
    ignored: 0,
  });
  assert.deepEqual(Object.keys(report.resources[0]).sort(), [
    "actions",
    "diff",
    "durationMs",
    "id",
    "source",
    "status",
  ]);
  const second = JSON.parse(cli(["apply", "site", "--json", "--state-dir", state], kitchen).stdout);
  assert.equal(second.summary.changed, 0);
  assert.equal(second.summary.unchanged, 2);
});

test("cli: plan shows a unified diff and changes nothing; apply then fixes the drift", async () => {
  const out = await tempDir();
  const state = await tempDir();
  await fs.writeFile(path.join(out, "conf"), "port=80\n");
  const kitchen = await makeKitchen({
    site: { recipes: { default: recipe(`r.file("${out}/conf", { content: "port=8080\\n" });`) } },
  });
  const plan = cli(["plan", "site", "--state-dir", state], kitchen);
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /pending\s+file\[.*conf\]/);
  assert.match(plan.stdout, /^\s+-port=80$/m);
  assert.match(plan.stdout, /^\s+\+port=8080$/m);
  assert.match(plan.stdout, /1 to change/);
  assert.equal(await fs.readFile(path.join(out, "conf"), "utf8"), "port=80\n");
  const apply = cli(["apply", "site", "--state-dir", state], kitchen);
  assert.match(apply.stdout, /1 changed/);
  assert.equal(await fs.readFile(path.join(out, "conf"), "utf8"), "port=8080\n");
});

test("cli: a single recipe file runs without a cookbooks folder", async () => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, "site.ts"), recipe(`r.file("${dir}/out", { content: "solo" });`));
  const result = cli(["apply", "./site.ts", "--state-dir", path.join(dir, "state")], dir);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(await fs.readFile(path.join(dir, "out"), "utf8"), "solo");
});

test("cli: user errors print error[CODE] and a hint, no stack trace, exit 2, and change nothing", async () => {
  const out = await tempDir();
  const kitchen = await makeKitchen({
    site: {
      recipes: {
        default: recipe(`r.file("${out}/first", { content: "x" });\nr.file("${out}/second", { mdoe: 1 });`),
      },
    },
  });
  const result = cli(["apply", "site"], kitchen);
  assert.equal(result.code, 2);
  assert.match(
    result.stderr,
    /^error\[RESOURCE_INVALID\]: file\[.*second\] \(cookbooks\/site\/recipes\/default\.ts:3\): unknown property "mdoe"/,
  );
  assert.match(result.stderr, /^hint: /m);
  assert.doesNotMatch(result.stderr, /at .*\.ts:\d+:\d+/);
  await assert.rejects(fs.stat(path.join(out, "first")));
  const json = cli(["apply", "nope", "--json"], kitchen);
  assert.equal(json.code, 2);
  assert.equal(JSON.parse(json.stdout).error.code, "COOKBOOK_NOT_FOUND");
  const usage = cli(["apply", "--bogus"], kitchen);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /error\[USAGE\]/);
});

test("cli: a failed resource makes the exit code 1", async () => {
  const out = await tempDir();
  const kitchen = await makeKitchen({
    site: {
      recipes: {
        default: recipe(`r.execute("boom", { command: "exit 4" });\nr.file("${out}/ok", { content: "y" });`),
      },
    },
  });
  const result = cli(["apply", "site", "--state-dir", out], kitchen);
  assert.equal(result.code, 1);
  assert.match(result.stdout, /failed\s+execute\[boom\]/);
  assert.match(result.stdout, /1 changed, 0 unchanged, 1 failed/);
});

test("cli: explain prints a type's properties from its schema; compile --json prints the catalog", async () => {
  const explain = cli(["explain", "file"], process.cwd());
  assert.equal(explain.code, 0);
  assert.match(explain.stdout, /actions: create \(default\), delete/);
  assert.match(explain.stdout, /content\s+string\n\s+the file's content/);
  assert.match(explain.stdout, /notifies/);
  const json = JSON.parse(cli(["explain", "template", "--json"], process.cwd()).stdout);
  assert.equal(json.type, "template");
  assert.ok(json.schema.properties.source);
  const kitchen = await makeKitchen({
    site: {
      recipes: {
        default: recipe(`r.file("/tmp/never-written", { content: "s3cret-value", sensitive: true });`),
      },
    },
  });
  const compiled = cli(["compile", "site", "--json"], kitchen);
  assert.equal(compiled.code, 0, compiled.stderr);
  const catalog = JSON.parse(compiled.stdout);
  assert.equal(catalog.resources[0].id, "file[/tmp/never-written]");
  assert.doesNotMatch(compiled.stdout, /s3cret/);
});
