import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { converge } from "../src/core/converge.ts";
import type { Report } from "../src/core/report.ts";
import { Secrets, withSecrets } from "../src/core/secrets.ts";
import { compileRun } from "../src/cookbooks/solo.ts";
import { LocalHost } from "../src/hosts/local.ts";
import { releaseRecipes, releaseTarget } from "../src/lifecycle/releases.ts";
import { tempDir } from "../src/resources/testing.ts";
import { stackSchema } from "../src/stacks/schema.ts";
import { buildStackState, type DeployingApp, StackView } from "../src/stacks/state.ts";

// release.service converged on this machine: the unit and the environment file are real files
// (in a temp folder instead of /etc/systemd/system), the recipes' real commands run. This machine's
// PID 1 is not systemd, so `systemctl` is a script that records what it was asked and keeps
// "enabled" as a file: what is tested here is the files and the commands chosen, and when they run.

const host = new LocalHost("app1");
const password = "pw-31d7c0b2-service-env";

interface Setup {
  root: string;
  deployTo: string;
  archive: string;
  stateDir: string;
  cookbooks: string;
  systemctl: string;
  calls: string;
}

async function setup(): Promise<Setup> {
  const root = await tempDir("galley-service-");
  const source = path.join(root, "src");
  await fs.mkdir(source);
  await fs.writeFile(path.join(source, "server.js"), "console.log('hello')\n");
  const archive = path.join(root, "hello.tar.gz");
  execFileSync("tar", ["-czf", archive, "-C", source, "."]);
  const cookbooks = path.join(root, "cookbooks");
  await fs.mkdir(cookbooks);
  await fs.mkdir(path.join(root, "systemd"));
  const calls = path.join(root, "systemctl.calls");
  const systemctl = path.join(root, "systemctl");
  await fs.writeFile(
    systemctl,
    `#!/bin/sh
echo "$*" >> ${calls}
case "$1" in
  enable) touch ${root}/enabled-$2 ;;
  is-enabled) [ -e ${root}/enabled-$3 ] ;;
esac
`,
    { mode: 0o755 },
  );
  return {
    root,
    deployTo: path.join(root, "srv"),
    archive,
    stateDir: path.join(root, "state"),
    cookbooks,
    systemctl,
    calls,
  };
}

async function run(
  s: Setup,
  recipe: string,
  id: number,
  release: Record<string, unknown> = {},
): Promise<Report> {
  const stack = v.parse(stackSchema, {
    name: "web",
    layers: [{ name: "app" }],
    instances: [{ name: "app1", layers: ["app"] }],
    apps: [
      {
        name: "hello",
        layers: ["app"],
        source: { type: "archive", url: s.archive },
        environment: { PORT: "3000", DB_PASSWORD: password },
        release: {
          deploy_to: s.deployTo,
          service: { exec: "node server.js", environment: { MODE: "production" } },
          ...release,
        },
      },
    ],
  });
  const state = buildStackState(stack, [{ name: "app1", status: "online", address: "127.0.0.1" }]);
  const target = releaseTarget(stack.apps[0]!, id)!;
  // a temp folder for /etc/systemd/system, the recording systemctl
  target.service = {
    ...target.service!,
    unit: path.join(s.root, "systemd", "hello.service"),
    systemctl: s.systemctl,
  };
  const deploying: DeployingApp = {
    ...state.apps[0]!,
    revision: `rev${id}`,
    archive: s.archive,
    release: target,
  };
  const view = new StackView(state, "app1", { event: "deploy", version: 1, deploying: [deploying] });
  // the password is a secret of this run, as a stack's secrets: files make it
  const secrets = new Secrets();
  secrets.register([password]);
  return withSecrets(secrets, async () => {
    const { catalog, types } = await compileRun({
      runList: [recipe],
      cookbooksDir: s.cookbooks,
      attributeFiles: [],
      host,
      stack: view,
    });
    return converge(catalog, host, { mode: "apply", stateDir: s.stateDir, types });
  });
}

const prepare = (s: Setup, id: number, release?: Record<string, unknown>) =>
  run(s, releaseRecipes.prepare, id, release);
const switchTo = (s: Setup, id: number, release?: Record<string, unknown>) =>
  run(s, releaseRecipes.switch, id, release);

function ok(report: Report): Report {
  assert.equal(report.status, "ok", JSON.stringify(report.resources.filter((r) => r.status === "failed")));
  return report;
}
const changed = (report: Report) => report.resources.filter((r) => r.status === "changed").map((r) => r.id);
const calls = async (s: Setup) =>
  ((await fs.readFile(s.calls, "utf8").catch(() => "")) || "").trim().split("\n").filter(Boolean);

test("release service: prepare writes the unit and a 0600 environment file, reloads and enables once; again changes nothing", async () => {
  const s = await setup();
  const first = ok(await prepare(s, 1));
  const unit = await fs.readFile(path.join(s.root, "systemd", "hello.service"), "utf8");
  const dir = path.join(s.deployTo, "hello");
  assert.match(unit, new RegExp(`^WorkingDirectory=${dir}/current$`, "m"));
  assert.match(unit, new RegExp(`^EnvironmentFile=${dir}/hello\\.env$`, "m"));
  assert.match(unit, /^ExecStart=\/bin\/sh -c "exec node server\.js"$/m);
  const envFile = path.join(dir, "hello.env");
  assert.equal(
    await fs.readFile(envFile, "utf8"),
    `PORT="3000"\nDB_PASSWORD="${password}"\nMODE="production"\n`,
  );
  assert.equal((await fs.stat(envFile)).mode & 0o777, 0o600);
  assert.deepEqual(await calls(s), [
    "daemon-reload",
    "is-enabled --quiet hello.service",
    "enable hello.service",
  ]);
  // the secret the environment file holds shows nowhere in the report
  assert.ok(!JSON.stringify(first).includes(password));
  assert.ok(first.resources.some((r) => r.id === `file[${envFile}]` && r.status === "changed"));

  const second = ok(await prepare(s, 1));
  assert.deepEqual(changed(second), []);
  assert.equal(second.summary.changed, 0);
  // only the enabled check ran: no reload, no enable
  assert.deepEqual((await calls(s)).slice(3), ["is-enabled --quiet hello.service"]);
});

test("release service: the switch restarts the unit once; switching again changes nothing", async () => {
  const s = await setup();
  ok(await prepare(s, 1));
  const before = (await calls(s)).length;
  const first = ok(await switchTo(s, 1));
  assert.ok(changed(first).length > 0);
  assert.deepEqual((await calls(s)).slice(before), ["restart hello.service"]);
  const second = ok(await switchTo(s, 1));
  assert.deepEqual(changed(second), []);
  assert.deepEqual((await calls(s)).slice(before), ["restart hello.service"]);
});

test("release service: a changed unit is reloaded, an unchanged one is not; restart: given wins over systemctl", async () => {
  const s = await setup();
  ok(await prepare(s, 1));
  const n = (await calls(s)).length;
  const report = ok(await prepare(s, 2, { service: { exec: "node server.js --port 3000" } }));
  assert.ok(changed(report).some((id) => id.endsWith("hello.service]")));
  assert.deepEqual((await calls(s)).slice(n), ["daemon-reload", "is-enabled --quiet hello.service"]);
  const marker = path.join(s.root, "restarted");
  const m = (await calls(s)).length;
  ok(await switchTo(s, 2, { service: { exec: "node server.js --port 3000" }, restart: `touch ${marker}` }));
  await fs.access(marker);
  assert.deepEqual((await calls(s)).slice(m), []);
});
