import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";

// The README's main job, on real hosts: examples/webapp (HAProxy, three Node.js app instances
// deployed from a git repository, PostgreSQL) brought up as a stack on systemd container hosts.
// The load balancer learns its backends only through configure.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const example = fileURLToPath(new URL("../examples/webapp", import.meta.url));

interface InstanceJson {
  name: string;
  status: string;
  address: string | null;
}

interface EventJson {
  kind: string;
  status: string;
  outcomes: Record<string, { status: string; summary?: { changed: number }; error?: { message: string } }>;
}

describe("the webapp example stack", { skip }, () => {
  let kitchen = "";
  const galley = (...args: string[]) => {
    const result = cli([...args, "--json"], kitchen);
    return { ...result, out: result.stdout ? JSON.parse(result.stdout) : undefined };
  };
  let lb = "";
  // what the load balancer answers, 12 times: round robin over its backends
  const answers = () => {
    const seen: string[] = [];
    for (let i = 0; i < 12; i++) {
      const curl = spawnSync("curl", ["-sS", "--max-time", "5", `http://${lb}/`], { encoding: "utf8" });
      assert.equal(curl.status, 0, curl.stderr);
      seen.push(curl.stdout.trim());
    }
    return seen;
  };
  const backends = () => new Set(answers().map((line) => /hello from (\S+)/.exec(line)?.[1]));

  before(async () => {
    kitchen = await tempDir("galley-webapp-");
    await fs.cp(example, kitchen, { recursive: true, filter: (src) => !src.includes(`${path.sep}.galley`) });
    const repo = spawnSync("bash", [path.join(kitchen, "make-app-repo.sh")], { encoding: "utf8" });
    assert.equal(repo.status, 0, repo.stderr);
  });
  after(() => {
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("stack up: every instance online; through HAProxy each app instance answers, with the database", () => {
    const up = galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-4000));
    const statuses = Object.fromEntries((up.out.instances as InstanceJson[]).map((i) => [i.name, i.status]));
    assert.deepEqual(statuses, {
      lb1: "online",
      app1: "online",
      app2: "online",
      app3: "online",
      app4: "stopped",
      db1: "online",
    });
    lb = (up.out.instances as InstanceJson[]).find((i) => i.name === "lb1")!.address!;
    const db = (up.out.instances as InstanceJson[]).find((i) => i.name === "db1")!.address!;
    const seen = answers();
    assert.deepEqual(
      new Set(seen.map((line) => /hello from (\S+)/.exec(line)?.[1])),
      new Set(["app1", "app2", "app3"]),
    );
    for (const line of seen)
      assert.match(line, new RegExp(`db db1 ${db.replaceAll(".", "\\.")}:5432 reachable`));
  });

  test("a configure changes nothing the second time (the example's recipes are idempotent)", () => {
    const run = galley("run", "configure", "--stack", "webapp");
    assert.equal(run.code, 0, run.stderr.slice(-4000));
    const event = (run.out.events as EventJson[])[0]!;
    for (const [name, outcome] of Object.entries(event.outcomes)) {
      assert.equal(outcome.status, "succeeded", name);
      assert.equal(outcome.summary?.changed, 0, `${name} changed something`);
    }
  });

  test("starting a fourth app instance adds it to HAProxy; stopping one removes it", () => {
    const start = galley("instance", "start", "app4", "--stack", "webapp");
    assert.equal(start.code, 0, start.stderr.slice(-4000));
    assert.deepEqual(backends(), new Set(["app1", "app2", "app3", "app4"]));
    const stop = galley("instance", "stop", "app2", "--stack", "webapp");
    assert.equal(stop.code, 0, stop.stderr.slice(-4000));
    assert.deepEqual(backends(), new Set(["app1", "app3", "app4"]));
  });

  test("the database password, from the encrypted stacks/secrets.yaml, reaches the app hosts and no file of the store", () => {
    const grep = (...args: string[]) =>
      spawnSync("grep", ["-rlF", "example-only-3b9e51c7d2a8", ...args], { encoding: "utf8" });
    // .galley/hosts holds the container hosts' own files, where the password belongs
    const store = grep("--exclude-dir=hosts", path.join(kitchen, ".galley"));
    assert.equal(store.status, 1, `no file but the hosts' may hold it: ${store.stdout}`);
    const env = path.join(kitchen, ".galley", "hosts", "app1", "merged", "srv", "hello", "shared", "env");
    assert.equal(grep(env).status, 0, "the app's environment file holds it");
  });

  test("stack down stops every instance", () => {
    const down = galley("stack", "down", "webapp");
    assert.equal(down.code, 0, down.stderr.slice(-4000));
    for (const i of down.out.instances as InstanceJson[]) assert.equal(i.status, "stopped", i.name);
  });
});
