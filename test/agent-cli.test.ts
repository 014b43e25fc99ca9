import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { motdBundle, motdJob, Peer, testCertificates } from "../src/agent/testing.ts";
import { caFingerprint, encodeEnrollmentToken } from "../src/agent/token.ts";
import { tempDir } from "../src/resources/testing.ts";

// `galley agent enroll` and `galley agent run` as the commands a host runs, against the test's
// protocol peer: the files enroll leaves, a run that connects, and SIGTERM ending it with exit 0.

const galley = fileURLToPath(new URL("../bin/galley.js", import.meta.url));
const run = promisify(execFile);

test("galley agent enroll writes the config and key; galley agent run connects and exits 0 on SIGTERM", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "tls"));
  const peer = new Peer(tls);
  await peer.listen();
  t.after(() => peer.close());
  const secret = randomBytes(32).toString("base64url");
  peer.secrets.add(secret);
  const token = encodeEnrollmentToken({ stack: "prod", instance: "web1", secret, ca: caFingerprint(tls.ca) });
  const config = path.join(dir, "etc", "agent.json");

  const enrolled = await run(process.execPath, [
    galley,
    "agent",
    "enroll",
    "--server",
    peer.url,
    "--token",
    token,
    "--config",
    config,
    "--json",
  ]);
  const shown = JSON.parse(enrolled.stdout) as Record<string, unknown>;
  assert.equal(shown.status, "enrolled");
  assert.equal(shown.stack, "prod");
  assert.equal(shown.instance, "web1");
  assert.equal(shown.keyFile, path.join(dir, "etc", "agent.key"));
  assert.equal((await fs.stat(config)).mode & 0o777, 0o600);
  assert.equal((await fs.stat(path.join(dir, "etc", "agent.key"))).mode & 0o777, 0o600);
  assert.doesNotMatch(enrolled.stdout + enrolled.stderr, new RegExp(secret));

  // the same token again: refused, exit 4, one line and a hint
  const again = await run(process.execPath, [
    galley,
    "agent",
    "enroll",
    "--server",
    peer.url,
    "--token",
    token,
    "--config",
    config,
  ]).then(
    () => assert.fail("a used token was accepted"),
    (error: { code: number; stderr: string }) => error,
  );
  assert.equal(again.code, 4);
  assert.match(
    again.stderr,
    /^error\[ENROLL_REFUSED\]: the server refused the enrollment: the enrollment token is used/,
  );

  const child = spawn(
    process.execPath,
    [galley, "agent", "run", "--config", config, "--state-dir", path.join(dir, "state")],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  t.after(() => child.exitCode === null && child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const deadline = Date.now() + 60_000;
  while (!stderr.includes("connected to")) {
    if (Date.now() > deadline || child.exitCode !== null) assert.fail(`the agent did not connect: ${stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.ok(peer.sessions.size >= 1);
  child.kill("SIGTERM");
  assert.equal(await exited, 0, stderr);
  assert.match(stderr, /galley agent: connected to https:\/\/localhost:\d+ as prod\/web1/);
  assert.match(stderr, /SIGTERM: stopping/);
});

test("galley agent run --once: one drift run from the kept job and bundle, delivered, exit 0", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "tls"));
  const peer = new Peer(tls);
  await peer.listen();
  t.after(() => peer.close());
  const secret = randomBytes(32).toString("base64url");
  peer.secrets.add(secret);
  const token = encodeEnrollmentToken({ stack: "prod", instance: "web1", secret, ca: caFingerprint(tls.ca) });
  const config = path.join(dir, "etc", "agent.json");
  await run(process.execPath, [
    galley,
    "agent",
    "enroll",
    "--server",
    peer.url,
    "--token",
    token,
    "--config",
    config,
  ]);

  // what an earlier run left: the periodic job (report mode: a plan, no lock taken), its bundle cached
  const state = path.join(dir, "state");
  const bundle = await motdBundle(path.join(dir, "kitchen"));
  await fs.mkdir(path.join(state, "bundles"), { recursive: true });
  await fs.copyFile(bundle.file, path.join(state, "bundles", `${bundle.id}.tgz`));
  const target = path.join(dir, "motd");
  const job = motdJob(bundle.id, target, "once");
  const settings = { runIntervalMs: 3_600_000, splayMs: 0, runMode: "report" };
  await fs.writeFile(path.join(state, "periodic.json"), JSON.stringify({ job, settings }));

  const once = await run(process.execPath, [
    galley,
    "agent",
    "run",
    "--once",
    "--json",
    "--config",
    config,
    "--state-dir",
    state,
  ]);
  assert.deepEqual(JSON.parse(once.stdout), { status: "ok", queued: 0 });
  const runs = [...peer.stored.values()];
  assert.equal(runs.length, 1);
  assert.equal(runs[0]?.status, "drift");
  assert.equal(runs[0]?.mode, "report");
  // a plan: nothing written
  await assert.rejects(fs.stat(target), { code: "ENOENT" });
  assert.deepEqual(await fs.readdir(path.join(state, "queue")), []);
});
