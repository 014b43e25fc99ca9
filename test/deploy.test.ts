import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cli, cliAsync } from "./support/cli.ts";
import {
  type DeploymentJson,
  noFailures,
  phases,
  WebappKitchen,
  webappApps as apps,
} from "./support/webapp.ts";

// Deployments of the webapp example (HAProxy in front of three Node.js app instances, PostgreSQL
// behind) on container hosts, with load through HAProxy during every deploy and rollback: the
// strategies, automatic rollback on a failed health check, cutover's all or nothing, a migration
// run once, rollback to a release still on disk, and a deploying process killed with SIGKILL.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

type Deployment = DeploymentJson;

describe("deployments of the webapp example", { skip, timeout: 900_000 }, () => {
  let kitchen = "";
  let lb = "";
  let k: WebappKitchen;
  const galley = (...args: string[]) => k.galley(...args);
  // async: the load generator lives in this process's event loop
  const deploy = (...args: string[]) => k.deploy(...args);
  const served = () => k.served();
  const newRevision = (edit: (source: string) => string) => k.newRevision(edit);
  const underLoad = <T>(work: () => Promise<T> | T) => {
    k.lb = lb;
    return k.underLoad(work);
  };

  before(async () => {
    k = await WebappKitchen.create("galley-deploy-");
    kitchen = k.dir;
  });
  after(() => k?.down());

  test("stack up makes the app's first deployment (cutover) and the stack pins its commit", async () => {
    const up = galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-3000));
    lb = up.out.instances.find((i: { name: string }) => i.name === "lb1").address;
    const list = galley("deployments", "hello", "--stack", "webapp").out.deployments as Deployment[];
    assert.equal(list.length, 1);
    assert.deepEqual([list[0]!.strategy, list[0]!.status], ["cutover", "succeeded"]);
    const revisions = new Set((await served()).values());
    assert.deepEqual([...revisions], [list[0]!.revision.slice(0, 7)]);
  });

  test("rolling, one at a time under load: 0 failed requests; each instance drained, switched, checked, back", async () => {
    const revision = await newRevision((s) => `${s}// revision 2\n`);
    const { value, load } = await underLoad(() =>
      deploy("deploy", "hello", "--stack", "webapp", "--strategy", "rolling"),
    );
    noFailures(load);
    const d = value.deployment;
    assert.equal(d.status, "succeeded", d.note);
    assert.equal(value.code, 0);
    for (const [i, name] of apps.entries()) {
      assert.deepEqual(phases(d, name), [
        "drain:succeeded",
        "prepare:succeeded",
        "switch:succeeded",
        "health:succeeded",
        "undrain:succeeded",
      ]);
      assert.ok(
        d.steps.filter((s) => s.instance === name).every((s) => s.batch === i),
        "one batch per instance",
      );
    }
    assert.deepEqual(new Set((await served()).values()), new Set([revision]));
    // every backend served during the deploy: never more than one out at once
    for (const name of apps) assert.ok((load.byBody.get(name) ?? 0) > 0, `${name} served`);
  });

  test("rollback --to the first deployment: its release is still on disk, so nothing is prepared, only a switch and a restart", async () => {
    const first = (galley("deployments", "hello", "--stack", "webapp").out.deployments as Deployment[]).at(
      -1,
    )!;
    const { value, load } = await underLoad(() =>
      deploy("rollback", "hello", "--stack", "webapp", "--to", String(first.id)),
    );
    noFailures(load);
    const d = value.deployment;
    assert.equal(d.status, "succeeded", d.note);
    assert.equal(d.rollbackOf, first.id);
    assert.equal(d.migration, "none");
    for (const name of apps) {
      const prepare = d.steps.find(
        (s) => s.instance === name && s.phase === "prepare" && s.status !== "running",
      )!;
      assert.match(prepare.log!, /nothing to prepare/, `${name}: only a switch (${prepare.log})`);
      const switched = d.steps.find(
        (s) => s.instance === name && s.phase === "switch" && s.status === "succeeded",
      )!;
      assert.equal(switched.release, String(first.id), "the first deployment's release folder");
    }
    assert.deepEqual(new Set((await served()).values()), new Set([first.revision.slice(0, 7)]));
  });

  test("pilot: a revision failing its health check touches only the pilot, rolled back there; 0 failed requests", async () => {
    const before = await served();
    await newRevision((s) =>
      s.replace(
        'response.writeHead(200, { "content-type": "text/plain" }).end(line);',
        'response.writeHead(500).end("broken\\n");',
      ),
    );
    const { value, load } = await underLoad(() =>
      deploy("deploy", "hello", "--stack", "webapp", "--strategy", "pilot"),
    );
    noFailures(load);
    const d = value.deployment;
    assert.equal(d.status, "rolled_back", d.note);
    assert.equal(value.code, 1);
    assert.deepEqual(phases(d, "app1"), [
      "drain:succeeded",
      "prepare:succeeded",
      "switch:succeeded",
      "health:failed",
      "rollback:succeeded",
      "undrain:succeeded",
    ]);
    assert.deepEqual(phases(d, "app2"), [], "app2 was never touched");
    assert.deepEqual(phases(d, "app3"), [], "app3 was never touched");
    assert.deepEqual(await served(), before, "every instance on the release it ran before");
  });

  test("cutover: one instance failing its prepare (its build) switches none", async () => {
    const before = await served();
    // a build that fails on app2 only
    const file = path.join(kitchen, "stacks", "webapp.yaml");
    const stack = await fs.readFile(file, "utf8");
    await fs.writeFile(
      file,
      stack.replace(
        "      restart: systemctl restart hello",
        "      restart: systemctl restart hello\n      build: test ! -e /etc/galley-fail-build",
      ),
    );
    assert.equal(cli(["hosts", "exec", "app2", "--", "touch", "/etc/galley-fail-build"], kitchen).code, 0);
    await newRevision((s) =>
      s.replace(
        'response.writeHead(500).end("broken\\n");',
        'response.writeHead(200, { "content-type": "text/plain" }).end(line);',
      ),
    );
    try {
      const { value, load } = await underLoad(() =>
        deploy("deploy", "hello", "--stack", "webapp", "--strategy", "cutover"),
      );
      noFailures(load);
      const d = value.deployment;
      assert.equal(d.status, "failed", d.note);
      assert.match(d.note!, /prepare failed on app2.*nothing was switched/);
      assert.equal(d.steps.filter((s) => s.phase === "switch").length, 0);
      assert.deepEqual(await served(), before);
    } finally {
      cli(["hosts", "exec", "app2", "--", "rm", "-f", "/etc/galley-fail-build"], kitchen);
    }
  });

  test("a failed migration fails the deployment with nothing switched; the drained instance is back in service", async () => {
    const before = await served();
    const file = path.join(kitchen, "stacks", "webapp.yaml");
    const stack = await fs.readFile(file, "utf8");
    await fs.writeFile(
      file,
      stack.replace(
        "      restart: systemctl restart hello",
        "      restart: systemctl restart hello\n      migrate: echo 'relation users already exists' >&2; exit 3",
      ),
    );
    await newRevision((s) => `${s}// revision whose migration fails\n`);
    try {
      const { value, load } = await underLoad(() =>
        deploy("deploy", "hello", "--stack", "webapp", "--strategy", "rolling"),
      );
      noFailures(load);
      const d = value.deployment;
      assert.equal(d.status, "failed", d.note);
      assert.equal(d.migration, "failed");
      assert.match(d.note!, /the migration failed on app1: nothing was switched/);
      assert.equal(d.steps.filter((s) => s.phase === "switch").length, 0);
      assert.deepEqual(phases(d, "app1"), [
        "drain:succeeded",
        "prepare:succeeded",
        "migrate:failed",
        "undrain:succeeded",
      ]);
      assert.match(d.steps.find((s) => s.phase === "migrate")!.log!, /relation users already exists/);
      assert.deepEqual(await served(), before);
    } finally {
      await fs.writeFile(file, stack);
    }
  });

  test("cutover: one instance failing its health check after the switch puts every instance back", async () => {
    const before = await served();
    await newRevision((s) =>
      s.replace(
        'response.writeHead(200, { "content-type": "text/plain" }).end(line);',
        'response.writeHead(hostname() === "app2" ? 500 : 200, { "content-type": "text/plain" }).end(line);',
      ),
    );
    const d = (await deploy("deploy", "hello", "--stack", "webapp", "--strategy", "cutover")).deployment;
    assert.equal(d.status, "rolled_back", d.note);
    assert.match(d.note!, /app2 \(health check failed\)/);
    for (const name of apps) {
      assert.ok(phases(d, name).includes("switch:succeeded"), `${name} switched`);
      assert.ok(phases(d, name).includes("rollback:succeeded"), `${name} put back`);
    }
    assert.deepEqual(await served(), before, "every instance on the release it ran before");
    // the app answers 200 everywhere again for the tests after this one
    await newRevision((s) =>
      s.replace(
        'response.writeHead(hostname() === "app2" ? 500 : 200, { "content-type": "text/plain" }).end(line);',
        'response.writeHead(200, { "content-type": "text/plain" }).end(line);',
      ),
    );
  });

  test("parallel with a migration: it runs once, before any switch, across both halves; 0 failed requests", async () => {
    const file = path.join(kitchen, "stacks", "webapp.yaml");
    const stack = await fs.readFile(file, "utf8");
    await fs.writeFile(
      file,
      stack.replace(
        "      restart: systemctl restart hello",
        '      restart: systemctl restart hello\n      migrate: echo "$GALLEY_DEPLOYMENT" >> /srv/hello/shared/log/migrations',
      ),
    );
    try {
      const revision = await newRevision((s) => `${s}// revision with a migration\n`);
      const { value, load } = await underLoad(() =>
        deploy("deploy", "hello", "--stack", "webapp", "--strategy", "parallel"),
      );
      noFailures(load);
      const d = value.deployment;
      assert.equal(d.status, "succeeded", d.note);
      assert.equal(d.migration, "done");
      const lines: string[] = [];
      for (const name of apps) {
        const cat = cli(
          [
            "hosts",
            "exec",
            name,
            "--",
            "sh",
            "-c",
            "cat /srv/hello/shared/log/migrations 2>/dev/null || true",
          ],
          kitchen,
        );
        lines.push(...cat.stdout.split("\n").filter((l) => l.trim() !== ""));
      }
      assert.deepEqual(lines, [String(d.id)], "one migration for the whole deployment");
      const migrate = d.steps.find((s) => s.phase === "migrate")!;
      const firstSwitch = d.steps.findIndex((s) => s.phase === "switch");
      assert.ok(d.steps.indexOf(migrate) < firstSwitch, "migrated before any switch");
      assert.deepEqual(new Set((await served()).values()), new Set([revision]));
      assert.deepEqual([...new Set(d.steps.map((s) => s.batch))].length, 2, "two halves");
    } finally {
      await fs.writeFile(file, stack);
    }
  });

  /** starts a rolling deploy and kills it with SIGKILL once app2 (batch 2) is out of the load balancer */
  const killDuringBatch2 = async () => {
    const child = spawn(
      process.execPath,
      [galleyBin, "deploy", "hello", "--stack", "webapp", "--strategy", "rolling"],
      { cwd: kitchen, env: { ...process.env, NO_COLOR: "1" } },
    );
    let stderr = "";
    await new Promise<void>((resolve) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        // app2 is out of the load balancer: the worst moment to die
        if (/app2\s+batch 2\s+drain\s+ok/.test(stderr) && child.exitCode === null) child.kill("SIGKILL");
      });
      child.on("exit", () => resolve());
    });
    assert.match(stderr, /app2\s+batch 2\s+drain\s+ok/, stderr);
    const left = (galley("deployments", "hello", "--stack", "webapp").out.deployments as Deployment[])[0]!;
    assert.equal(left.status, "running", "the killed deployment is left running in the store");
    return left;
  };

  test("kill -9 after the migration ran, then galley deployment resume: the rest goes through, app1 and the migration are not redone", async () => {
    const file = path.join(kitchen, "stacks", "webapp.yaml");
    const stack = await fs.readFile(file, "utf8");
    await fs.writeFile(
      file,
      stack.replace(
        "      restart: systemctl restart hello",
        '      restart: systemctl restart hello\n      migrate: echo "$GALLEY_DEPLOYMENT" >> /srv/hello/shared/log/migrations',
      ),
    );
    try {
      const revision = await newRevision((s) => `${s}// revision resumed\n`);
      const left = await killDuringBatch2();
      const { value, load } = await underLoad(() =>
        deploy("deployment", "resume", String(left.id), "--stack", "webapp"),
      );
      noFailures(load);
      const d = value.deployment;
      assert.equal(d.id, left.id);
      assert.equal(d.status, "succeeded", d.note);
      assert.equal(d.migration, "done");
      assert.match(value.stderr, new RegExp(`deployment #${left.id} resumed: app2, app3 left \\(1 done\\)`));
      assert.equal(
        d.steps.filter((s) => s.instance === "app1" && s.phase === "switch").length,
        1,
        "app1 switched once",
      );
      const migrated: string[] = [];
      for (const name of apps) {
        const cat = cli(
          [
            "hosts",
            "exec",
            name,
            "--",
            "sh",
            "-c",
            "cat /srv/hello/shared/log/migrations 2>/dev/null || true",
          ],
          kitchen,
        );
        migrated.push(...cat.stdout.split("\n").filter((l) => l.trim() === String(left.id)));
      }
      assert.equal(migrated.length, 1, "the migration ran once, before the kill, not again on resume");
      assert.deepEqual(new Set((await served()).values()), new Set([revision]));
      const again = await cliAsync(["deployment", "resume", String(left.id), "--stack", "webapp"], kitchen);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /ended succeeded: there is nothing to resume/);
    } finally {
      await fs.writeFile(file, stack);
    }
  });

  test("kill -9 of the deploying process: the next deploy records it interrupted, returns its instances to service, ends on one release", async () => {
    const revision = await newRevision((s) => `${s}// revision after a kill\n`);
    const left = await killDuringBatch2();
    const { value, load } = await underLoad(() =>
      deploy("deploy", "hello", "--stack", "webapp", "--strategy", "rolling"),
    );
    noFailures(load);
    assert.equal(value.deployment.status, "succeeded", value.deployment.note);
    assert.match(value.stderr, new RegExp(`deployment #${left.id} was interrupted`));
    const after = galley("deployment", "show", String(left.id), "--stack", "webapp").out
      .deployment as Deployment;
    assert.equal(after.status, "interrupted");
    assert.deepEqual(new Set((await served()).values()), new Set([revision]));
    // every backend serves through HAProxy again
    const { load: check } = await underLoad(() => new Promise((resolve) => setTimeout(resolve, 3000)));
    for (const name of apps) assert.ok((check.byBody.get(name) ?? 0) > 0, `${name} back in service`);
  });

  test("bad input is a coded error naming the flag or revision, and records no deployment", () => {
    const count = () =>
      (galley("deployments", "hello", "--stack", "webapp").out.deployments as Deployment[]).length;
    const before = count();
    // --plan: the batches, and nothing deployed
    const plan = galley("deploy", "hello", "--stack", "webapp", "--strategy", "pilot", "--plan");
    assert.equal(plan.code, 0, plan.stderr);
    // the pilot, then the rest in halves of it: one each with two left
    assert.deepEqual(plan.out.plan.plan.batches, [["app1"], ["app2"], ["app3"]]);
    assert.equal(plan.out.plan.plan.drain, true);
    for (const [args, pattern] of [
      [["--strategy", "canary"], /--strategy canary: no such strategy/],
      [["--batch", "0"], /--batch 0: a whole number of instances, at least 1/],
      [["--batch", "150%"], /--batch 150%: a share from 1% to 100%/],
      [["--strategy", "parallel", "--batch", "2"], /--batch 2 does not go with --strategy parallel/],
      [["--revision", "no-such-branch"], /revision no-such-branch does not exist/],
    ] as const) {
      const result = cli(["deploy", "hello", "--stack", "webapp", ...args], kitchen);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, pattern);
    }
    assert.equal(count(), before);
  });
});
