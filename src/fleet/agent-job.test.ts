import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { cli } from "../../test/support/cli.ts";
import { makeKitchen, recipe } from "../../test/support/kitchen.ts";
import { builtinItem, resolveBuiltin } from "../core/builtin-recipes.ts";
import { processSecrets, Secrets } from "../core/secrets.ts";
import { tempDir } from "../resources/testing.ts";
import { type StackState, StackView } from "../stacks/state.ts";
import type { AgentLink, AgentTarget, ConvergeJob } from "./agent-protocol.ts";
import { type FleetMember, type HostOutcome, type HostPhase, runFleet } from "./pipeline.ts";

// The converge job an agent member receives: only its shape is checked here, with a recording
// AgentLink (the end-to-end proof, a real agent converging it, is in test/agent-transport.test.ts).

const packagesRecipe = fileURLToPath(new URL("../lifecycle/recipes/packages.ts", import.meta.url));

/** What a recording AgentLink saw, and the outcome it answers with. */
function recordingLink(answer: HostOutcome) {
  const jobs: { target: AgentTarget; job: ConvergeJob }[] = [];
  const link: AgentLink = {
    converge: async (target, job, options) => {
      jobs.push({ target, job });
      options.onPhase?.({ phase: "converging", done: 0, total: 1, changed: 0, failed: 0 });
      options.onPhase?.({ phase: "done", outcome: answer });
      return answer;
    },
    connect: async () => {
      throw new Error("not used");
    },
    connected: () => true,
  };
  return { link, jobs };
}

const state: StackState = {
  stack: { name: "prod", attributes: { tier: "gold" } },
  layers: [
    {
      name: "app",
      shortName: "app",
      packages: ["curl"],
      attributes: {},
      environment: {},
      instances: ["web1"],
    },
  ],
  instances: [
    {
      name: "web1",
      layers: ["app"],
      status: "online",
      address: "10.0.0.2",
      hostname: "web1",
      provider: "container",
      inService: true,
      weight: 100,
    },
  ],
  apps: [],
};

async function kitchen(locked: boolean) {
  const root = await makeKitchen({
    web: { recipes: { default: recipe(`  r.file("/tmp/x", { content: "x" });`) } },
  });
  if (!locked) return root;
  await fs.writeFile(path.join(root, "cookbooks.yaml"), "cookbooks:\n  web: { path: ./cookbooks/web }\n");
  const cache = await tempDir("galley-t-cache-");
  process.env.GALLEY_CACHE_DIR = cache;
  const installed = cli(["cookbooks", "install"], root, { GALLEY_CACHE_DIR: cache });
  assert.equal(installed.code, 0, installed.stderr);
  return root;
}

function member(): FleetMember {
  return {
    name: "web1",
    target: { name: "web1" } as FleetMember["target"],
    agent: { stack: "prod", instance: "web1" },
    runList: [packagesRecipe, "web"],
    attributes: [{ source: { level: "instance", label: "instance web1" }, values: { port: 8080 } }],
    stack: new StackView(state, "web1", { event: "setup", version: 7 }),
  };
}

test("an agent member gets a converge job: the bundle id, built-in recipes as galley: items, attributes, stack and secrets", async () => {
  const root = await kitchen(true);
  const secrets = new Secrets(processSecrets);
  secrets.register(["hunter2-secret-value"]);
  const answer: HostOutcome = {
    status: "failed",
    error: { code: "EXEC_FAILED", message: "echo hunter2-secret-value failed" },
    durationMs: 5,
  };
  const { link, jobs } = recordingLink(answer);
  const phases: HostPhase[] = [];
  let bundle: string | undefined;
  const outcomes = await runFleet({
    batches: [[member()]],
    mode: "apply",
    forks: 1,
    compile: { runList: [], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
    builtins: new Set([packagesRecipe]),
    command: "galley setup event of stack prod",
    waitMs: 1234,
    secrets,
    agents: link,
    connect: async () => assert.fail("an agent member is never connected over SSH"),
    onResolved: (prepared) => {
      bundle = prepared.id;
    },
    onPhase: (_name, phase) => phases.push(phase),
  });
  assert.equal(jobs.length, 1);
  const { target, job } = jobs[0]!;
  assert.deepEqual(target, { stack: "prod", instance: "web1" });
  assert.match(job.bundle, /^[0-9a-f]{64}$/);
  assert.equal(job.bundle, bundle);
  assert.deepEqual(job.runList, ["galley:lifecycle/recipes/packages.ts", "web"]);
  assert.equal(resolveBuiltin(job.runList[0]!), packagesRecipe);
  assert.deepEqual(job.attributes, [
    { source: { level: "instance", label: "instance web1" }, values: { port: 8080 } },
  ]);
  assert.equal(job.mode, "apply");
  assert.equal(job.command, "galley setup event of stack prod");
  assert.equal(job.waitMs, 1234);
  assert.deepEqual(job.secrets, ["hunter2-secret-value"]);
  assert.deepEqual(job.stack, { state, instance: "web1", event: "setup", version: 7, deploying: [] });
  // the job travels as JSON: nothing in it may be lost on the way
  assert.deepEqual(JSON.parse(JSON.stringify(job)), job);
  // the agent's phases are the fleet's; the pipeline settles the host once, with the error scrubbed
  assert.deepEqual(
    phases.map((p) => p.phase),
    ["waiting", "connecting", "converging", "done"],
  );
  const outcome = outcomes.get("web1")!;
  assert.equal(outcome.status, "failed");
  assert.ok("error" in outcome && !outcome.error.message.includes("hunter2"), JSON.stringify(outcome));
});

test("an agent member without an AgentLink is unreachable, with the way to run it", async () => {
  const root = await kitchen(true);
  const outcomes = await runFleet({
    batches: [[member()]],
    mode: "apply",
    forks: 1,
    compile: { runList: [], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
    builtins: new Set([packagesRecipe]),
    connect: async () => assert.fail("an agent member is never connected over SSH"),
  });
  const outcome = outcomes.get("web1")!;
  assert.equal(outcome.status, "unreachable");
  assert.ok("error" in outcome);
  assert.equal(outcome.error.code, "HOST_UNREACHABLE");
  assert.equal(outcome.error.message, "web1 is managed by an agent");
  assert.match(outcome.error.hint ?? "", /galley server \(galley --server URL/);
});

test("an agent member of a kitchen without a lock fails: the agent needs a bundle", async () => {
  const root = await kitchen(false);
  const { link, jobs } = recordingLink({ status: "skipped", reason: "x", durationMs: 0 });
  const outcomes = await runFleet({
    batches: [[member()]],
    mode: "apply",
    forks: 1,
    compile: { runList: [], cookbooksDir: path.join(root, "cookbooks"), attributeFiles: [] },
    builtins: new Set([packagesRecipe]),
    agents: link,
    connect: async () => assert.fail("never"),
  });
  assert.equal(jobs.length, 0);
  const outcome = outcomes.get("web1")!;
  assert.equal(outcome.status, "failed");
  assert.ok("error" in outcome);
  assert.equal(outcome.error.code, "USAGE");
  assert.match(outcome.error.hint ?? "", /galley cookbooks lock/);
});

test("built-in items: a Galley recipe file maps to galley:<path under src/> and back; other items pass; escapes are refused", () => {
  const srcDir = "/opt/galley/current/src";
  assert.equal(
    builtinItem(`${srcDir}/lifecycle/recipes/release-switch.ts`, srcDir),
    "galley:lifecycle/recipes/release-switch.ts",
  );
  assert.equal(
    resolveBuiltin("galley:lifecycle/recipes/release-switch.ts", srcDir),
    `${srcDir}/lifecycle/recipes/release-switch.ts`,
  );
  assert.equal(resolveBuiltin("web::db", srcDir), "web::db");
  assert.throws(() => resolveBuiltin("galley:../../etc/passwd.ts", srcDir), /USAGE|does not name/);
  assert.throws(() => resolveBuiltin("galley:lifecycle/recipes/x.sh", srcDir), /does not name/);
  assert.throws(() => builtinItem("/tmp/elsewhere.ts", srcDir), /not one of Galley's own recipe files/);
});
