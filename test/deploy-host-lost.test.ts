import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { cli, cliAsync } from "./support/cli.ts";
import { startLoad } from "./support/load.ts";
import { type DeploymentJson, phases, WebappKitchen, webappApps as apps } from "./support/webapp.ts";

// A host lost mid-deploy, on the webapp example (HAProxy in front of three app instances on
// container hosts), with load through HAProxy all along: `galley hosts kill app2` (a power cut)
// once app1 switched in batch 1 of a rolling deploy: app2 dies while HAProxy still sends it
// requests, before its own batch drains it. The deployment reports app2 failed, rolls back app1 (--max-fail 0), app1 and app3
// end on one release; the failed requests are only the ones HAProxy sent to app2 before its
// checks marked it down (counted and reported). Then app2 starts again and a deploy succeeds.
// Last, a batch past its --deadline is stopped and the deployment rolls back.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

type Deployment = DeploymentJson;

// HAProxy's own counters of one backend (show stat): connection and response errors per server
const statScript = `perl -MIO::Socket::UNIX -e 'my $s = IO::Socket::UNIX->new(Peer => "/run/haproxy/admin.sock") or die "$!\\n"; print $s "show stat\\n"; print while <$s>;'`;

describe("a host killed mid-deploy", { skip, timeout: 1_200_000 }, () => {
  let kitchen = "";
  let lb = "";
  let k: WebappKitchen;
  const galley = (...args: string[]) => k.galley(...args);
  const deploy = (...args: string[]) => k.deploy(...args);
  /** the revision each named instance serves, asked of it directly (not through HAProxy) */
  const served = (names = apps) => k.served(names);
  const newRevision = (edit: (source: string) => string) => k.newRevision(edit);
  const load = () => startLoad({ url: `http://${lb}/`, byBody: /hello from (\S+)/, connections: 4 });
  /** each app server's connection and response errors as HAProxy counted them */
  const serverErrors = () => {
    const result = cli(["hosts", "exec", "lb1", "--", "sh", "-c", statScript], kitchen);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    const header = lines
      .find((l) => l.startsWith("# "))!
      .slice(2)
      .split(",");
    const col = (name: string) => header.indexOf(name);
    const out = new Map<string, number>();
    for (const line of lines) {
      const cells = line.split(",");
      if (cells[col("pxname")] !== "app" || !apps.includes(cells[col("svname")]!)) continue;
      out.set(cells[col("svname")]!, Number(cells[col("econ")] || 0) + Number(cells[col("eresp")] || 0));
    }
    return out;
  };

  before(async () => {
    k = await WebappKitchen.create("galley-host-lost-");
    kitchen = k.dir;
    const up = galley("stack", "up", "webapp");
    assert.equal(up.code, 0, up.stderr.slice(-3000));
    lb = up.out.instances.find((i: { name: string }) => i.name === "lb1").address;
  });
  after(() => k?.down());

  test("app2 killed while in service, before its batch: app2 reported failed, app1 rolled back, app1 and app3 on one release", async (t) => {
    const before = await served();
    assert.equal(new Set(before.values()).size, 1, "one release before");
    await newRevision((s) => `${s}// revision while a host dies\n`);
    const running = load();
    let killed: Promise<{ code: number | null; stderr: string }> | undefined;
    const child = spawn(
      process.execPath,
      [
        galleyBin,
        "deploy",
        "hello",
        "--stack",
        "webapp",
        "--strategy",
        "rolling",
        "--max-fail",
        "0",
        "--json",
      ],
      { cwd: kitchen, env: { ...process.env, NO_COLOR: "1" } },
    );
    let stdout = "";
    let stderr = "";
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      // app1 switched (out of service), app2 serves and its batch is next: the power goes
      if (!killed && /app1\s+batch 1\s+switch\s+ok/.test(stderr))
        killed = cliAsync(["hosts", "kill", "app2"], kitchen);
    });
    const code = await exited;
    await child.stdout.closed;
    assert.ok(killed, `app1 never switched: ${stderr.slice(-3000)}`);
    const kill = await killed!;
    assert.equal(kill.code, 0, kill.stderr);
    const during = await running.stop();

    const d = JSON.parse(stdout).deployment as Deployment;
    assert.equal(d.status, "rolled_back", d.note);
    assert.equal(code, 1);
    assert.match(d.note!, /app2 \(.*\) failed \(--max-fail 0\)/);
    const app2Failed = d.steps.filter((s) => s.instance === "app2" && s.status === "failed");
    assert.ok(app2Failed.length > 0, `app2 reported failed: ${phases(d, "app2").join(", ")}`);
    assert.ok(!d.steps.some((s) => s.instance === "app2" && s.phase === "switch"), "app2 was never switched");
    assert.deepEqual(phases(d, "app1").slice(0, 5), [
      "drain:succeeded",
      "prepare:succeeded",
      "switch:succeeded",
      "health:succeeded",
      "undrain:succeeded",
    ]);
    assert.ok(phases(d, "app1").includes("rollback:succeeded"), phases(d, "app1").join(", "));
    assert.deepEqual(phases(d, "app3"), [], "app3 was never touched");
    const after = await served(["app1", "app3"]);
    assert.deepEqual(
      after,
      new Map([...before].filter(([name]) => name !== "app2")),
      "app1 and app3 on the release they ran before",
    );

    // every failed request was HAProxy's to the dead host: app1 and app3 answered everything
    const errors = serverErrors();
    assert.equal(errors.get("app1"), 0, "no connection or response error on app1");
    assert.equal(errors.get("app3"), 0, "no connection or response error on app3");
    t.diagnostic(
      `during the deploy: ${during.requests} responses, ${during.non2xx} non-2xx, ${during.errors} errors; HAProxy counted ${errors.get("app2")} connection/response errors on app2; app2's steps: ${app2Failed.map((s) => `${s.phase}: ${(s.log ?? "").split("\n")[0]}`).join("; ")}`,
    );
    assert.ok(during.requests > 0, "the load ran");

    // with app2 down, HAProxy serves from app1 and app3 without a failure
    const check = load();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const steady = await check.stop();
    assert.deepEqual(
      { errors: steady.errors, non2xx: steady.non2xx },
      { errors: 0, non2xx: 0 },
      steady.samples.join("; "),
    );
    for (const name of ["app1", "app3"]) assert.ok((steady.byBody.get(name) ?? 0) > 0, `${name} serves`);
  });

  test("app2 started again: a new rolling deploy succeeds on all three, 0 failed requests", async () => {
    const started = cli(["hosts", "start", "app2"], kitchen);
    assert.equal(started.code, 0, started.stderr);
    const revision = await newRevision((s) => `${s}// revision after the host came back\n`);
    const running = load();
    const { value, loaded } = await deploy(
      "deploy",
      "hello",
      "--stack",
      "webapp",
      "--strategy",
      "rolling",
    ).then(
      async (value) => ({ value, loaded: await running.stop() }),
      async (error) => {
        await running.stop();
        throw error;
      },
    );
    assert.equal(
      value.deployment.status,
      "succeeded",
      `${value.deployment.note}\n${value.stderr.slice(-3000)}`,
    );
    assert.deepEqual(
      { errors: loaded.errors, non2xx: loaded.non2xx },
      { errors: 0, non2xx: 0 },
      loaded.samples.join("; "),
    );
    assert.deepEqual(new Set((await served()).values()), new Set([revision]));
  });

  test("a batch past its --deadline is stopped: app2's slow build ends, app1 rolled back, the note names the batch", async () => {
    const before = await served();
    const file = path.join(kitchen, "stacks", "webapp.yaml");
    const stack = await fs.readFile(file, "utf8");
    await fs.writeFile(
      file,
      stack.replace(
        "      restart: systemctl restart hello",
        "      restart: systemctl restart hello\n      build: if test -e /etc/galley-slow-build; then sleep 600; fi",
      ),
    );
    assert.equal(cli(["hosts", "exec", "app2", "--", "touch", "/etc/galley-slow-build"], kitchen).code, 0);
    await newRevision((s) => `${s}// revision with a slow build on app2\n`);
    try {
      const { code, deployment: d } = await deploy(
        "deploy",
        "hello",
        "--stack",
        "webapp",
        "--strategy",
        "rolling",
        "--deadline",
        "60",
      );
      assert.equal(code, 1);
      assert.equal(d.status, "rolled_back", d.note);
      assert.match(d.note!, /^batch 2 of 3 \(app2\) did not finish within --deadline 60 s: stopped/);
      assert.deepEqual(
        phases(d, "app2").filter((p) => p.startsWith("prepare")),
        ["prepare:failed"],
      );
      assert.ok(phases(d, "app1").includes("rollback:succeeded"), phases(d, "app1").join(", "));
      assert.deepEqual(phases(d, "app3"), []);
      assert.deepEqual(await served(), before, "every instance on the release it ran before");
      // the build's sleep was stopped on app2, not left running
      const ps = cli(
        ["hosts", "exec", "app2", "--", "sh", "-c", "grep -lx sleep /proc/[0-9]*/comm 2>/dev/null || true"],
        kitchen,
      );
      assert.equal(ps.stdout.trim(), "", "no sleep left on app2");
    } finally {
      cli(["hosts", "exec", "app2", "--", "rm", "-f", "/etc/galley-slow-build"], kitchen);
      await fs.writeFile(file, stack);
    }
  });
});
