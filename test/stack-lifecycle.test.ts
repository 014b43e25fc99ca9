import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";
import { openSqliteStore, storeFile } from "../src/store/sqlite.ts";
import { cli } from "./support/cli.ts";

// The OpsWorks lifecycle on real hosts (galley hosts, sysv: they boot in a fraction of a second):
// a small kitchen whose configure recipe writes the online peers it was given, so every fan-out
// is visible on each host's disk.

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const galleyBin = fileURLToPath(new URL("../bin/galley.js", import.meta.url));

const stackYaml = `# a small stack for the lifecycle tests
name: lab
cookbooks: ../cookbooks
attributes: { greeting: hello }
layers:
  - name: web
    packages: [galley-hello]
    attributes: { role: web }
    shutdown_timeout: 8
    recipes:
      setup: [lab::setup]
      configure: [lab::configure]
      deploy: [lab::deploy]
      undeploy: [lab::undeploy]
      shutdown: [lab::shutdown]
  - name: broken
    recipes: { setup: [lab::broken] }
instances:
  - { name: web1, layers: [web], provider: { type: container, init: sysv } }
  - { name: web2, layers: [web], provider: { type: container, init: sysv } }
  - name: web3
    layers: [web]
    provider: { type: container, init: sysv }
    scaling: { type: load }
  - { name: bad1, layers: [broken], provider: { type: container, init: sysv } }
apps:
  - { name: site, layers: [web], source: { type: archive, url: ../site.tar.gz } }
`;

const recipes: Record<string, string> = {
  "setup.ts": `export default function (r) {
  r.file("/etc/lab-setup", { content: \`\${r.attrs.greeting} \${r.attrs.role} \${r.stack.instance.name}\\n\` });
}
`,
  // the peers this instance was told about, with the state version: what an lb would render
  "configure.ts": `export default function (r) {
  r.execute("slow", { command: ["sleep", "5"], onlyIf: "test -e /etc/lab-slow" });
  const peers = r.stack.online("web").map((i) => \`\${i.name} \${i.address}\`).join("\\n");
  r.file("/etc/lab-peers", { content: \`\${peers}\\n\` });
}
`,
  // the archive Galley shipped, unpacked once per revision
  "deploy.ts": `export default function (r) {
  for (const app of r.stack.deploying)
    r.execute(\`unpack \${app.name}\`, {
      command: ["sh", "-c", \`mkdir -p /srv/\${app.name} && tar -xzf \${app.archive} -C /srv/\${app.name}\`],
      creates: \`/srv/\${app.name}/index.txt\`,
    });
}
`,
  "undeploy.ts": `export default function (r) {
  for (const app of r.stack.deploying) r.directory(\`/srv/\${app.name}\`, { action: "delete", recursive: true });
}
`,
  "shutdown.ts": `export default function (r) {
  r.file("/etc/lab-shutdown", { content: "bye\\n" });
  r.execute("linger", { command: ["sleep", "60"], onlyIf: "test -e /etc/lab-slow-shutdown" });
}
`,
  "broken.ts": `export default function (r) {
  r.execute("fails", { command: ["sh", "-c", "echo broken setup >&2; exit 3"] });
}
`,
  "slow.ts": `export default function (r) {
  r.execute("wait", { command: ["sleep", "60"] });
}
`,
};

describe("stack lifecycle on container hosts", { skip }, () => {
  let kitchen = "";
  const galley = (...args: string[]) => cli(args, kitchen);
  const json = (...args: string[]) => {
    const result = galley(...args, "--json");
    assert.ok(result.stdout, `galley ${args.join(" ")}: no output\n${result.stderr}`);
    return { ...result, out: JSON.parse(result.stdout) };
  };
  const peers = (host: string) => galley("hosts", "exec", host, "--", "cat", "/etc/lab-peers").stdout;
  const waitForSleep = async (host: string) => {
    for (let i = 0; i < 150; i++) {
      if (galley("hosts", "exec", host, "--", "pgrep", "-x", "sleep").code === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.fail(`nothing sleeps on ${host}`);
  };
  const status = (name: string) => {
    const { out } = json("stack", "status", "lab");
    return (out.instances as { name: string; status: string }[]).find((i) => i.name === name)?.status;
  };

  before(async () => {
    kitchen = await tempDir("galley-stack-");
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks/lab/recipes"), { recursive: true });
    await fs.writeFile(path.join(kitchen, "stacks/lab.yaml"), stackYaml);
    await fs.writeFile(path.join(kitchen, "cookbooks/lab/cookbook.yaml"), "name: lab\nversion: 1.0.0\n");
    for (const [file, text] of Object.entries(recipes))
      await fs.writeFile(path.join(kitchen, "cookbooks/lab/recipes", file), text);
    // the app: an archive on this machine
    await fs.mkdir(path.join(kitchen, "site"));
    await fs.writeFile(path.join(kitchen, "site/index.txt"), "site v1\n");
    const tar = spawnSync("tar", ["-czf", "site.tar.gz", "-C", "site", "index.txt"], { cwd: kitchen });
    assert.equal(tar.status, 0);
  });
  after(() => {
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("stack up: setup, online, configure everywhere; a failing setup leaves only that instance setup_failed", async () => {
    const up = json("stack", "up", "lab");
    assert.equal(up.code, 1, "bad1's setup failed");
    const statuses = Object.fromEntries(
      (up.out.instances as { name: string; status: string }[]).map((i) => [i.name, i.status]),
    );
    assert.deepEqual(statuses, { web1: "online", web2: "online", web3: "stopped", bad1: "setup_failed" });
    assert.match(up.stderr, /web3: load-based: left stopped/);
    // the layer's packages (from the hosts' apt repository) came first, then the setup recipe
    assert.equal(galley("hosts", "exec", "web1", "--", "cat", "/etc/lab-setup").stdout, "hello web web1\n");
    assert.equal(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format syntax
      galley("hosts", "exec", "web2", "--", "dpkg-query", "-W", "-f=${Status}", "galley-hello").stdout,
      "install ok installed",
    );
    const setupOfBad = (
      up.out.events as {
        kind: string;
        outcomes: Record<string, { status: string; error?: { message: string } }>;
      }[]
    ).find((e) => e.kind === "setup" && e.outcomes.bad1);
    assert.equal(setupOfBad?.outcomes.bad1?.status, "failed");
    // configure gave both web instances the same, latest state: each other and nobody else
    const expected = peers("web1");
    assert.match(expected, /^web1 10\.\d+\.\d+\.\d+\nweb2 10\.\d+\.\d+\.\d+\n$/);
    assert.equal(peers("web2"), expected);
    // the transitions are recorded
    const store = openSqliteStore(storeFile(kitchen));
    try {
      assert.deepEqual(
        (await store.statusHistory("lab", "web1")).map((t) => t.to),
        ["stopped", "requested", "booting", "running_setup", "online"],
      );
      assert.equal((await store.statusHistory("lab", "bad1")).at(-1)?.to, "setup_failed");
      assert.match((await store.statusHistory("lab", "bad1")).at(-1)!.reason, /setup/);
    } finally {
      await store.close();
    }
  });

  test("deploy ships the app's archive and the layer's recipe installs it; undeploy removes it", () => {
    const site = (host: string) => galley("hosts", "exec", host, "--", "cat", "/srv/site/index.txt");
    assert.equal(site("web1").stdout, "site v1\n", "deployed when web1 came online");
    const undeploy = json("run", "undeploy", "--app", "site", "--stack", "lab");
    assert.equal(undeploy.code, 0, undeploy.stderr);
    assert.deepEqual(Object.keys(undeploy.out.events[0].outcomes).sort(), ["web1", "web2"]);
    assert.equal(site("web1").code, 1, "gone");
    const deploy = json("run", "deploy", "--stack", "lab", "--instance", "web2");
    assert.equal(deploy.code, 0, deploy.stderr);
    assert.equal(site("web2").stdout, "site v1\n");
    assert.equal(site("web1").code, 1, "--instance web2: web1 untouched");
  });

  test("starting an instance runs configure on every online instance, the new one included", () => {
    const start = json("instance", "start", "web3", "--stack", "lab");
    assert.equal(start.code, 0, start.stderr);
    const configure = (
      start.out.events as {
        kind: string;
        status: string;
        stateVersion: number;
        outcomes: Record<string, { status: string }>;
      }[]
    )
      .filter((e) => e.kind === "configure" && e.status === "succeeded")
      .at(-1)!;
    assert.deepEqual(Object.keys(configure.outcomes).sort(), ["web1", "web2", "web3"]);
    assert.equal(configure.stateVersion, start.out.stateVersion, "configure ran with the latest state");
    for (const host of ["web1", "web2", "web3"]) assert.match(peers(host), /^web1 .*\nweb2 .*\nweb3 .*\n$/);
  });

  test("stopping an instance: its shutdown recipes, its host stops, the others are configured without it", () => {
    const stop = json("instance", "stop", "web2", "--stack", "lab");
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(status("web2"), "stopped");
    const shutdown = (
      stop.out.events as { kind: string; outcomes: Record<string, { status: string }> }[]
    ).find((e) => e.kind === "shutdown");
    assert.equal(shutdown?.outcomes.web2?.status, "succeeded");
    // the host is down (its disk kept the shutdown recipe's file)
    assert.equal(galley("hosts", "exec", "web2", "--", "true").code === 0, false);
    const list = json("hosts", "list").out.hosts as { name: string; status: string }[];
    assert.equal(list.find((h) => h.name === "web2")?.status, "stopped");
    for (const host of ["web1", "web3"]) assert.match(peers(host), /^web1 .*\nweb3 .*\n$/);
  });

  test("a configure overtaken by a newer stack state skips the instances it has not reached: superseded", async () => {
    // web1 is slow to configure (its recipe sleeps while /etc/lab-slow exists), one host at a time
    assert.equal(galley("hosts", "exec", "web1", "--", "touch", "/etc/lab-slow").code, 0);
    const child = spawn(
      process.execPath,
      [galleyBin, "run", "configure", "--stack", "lab", "--forks", "1", "--json"],
      {
        cwd: kitchen,
        env: { ...process.env, NO_COLOR: "1" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
    // wait until web1's configure sleeps, then change the state from another process
    await waitForSleep("web1");
    const started = galley("instance", "start", "web2", "--stack", "lab");
    assert.equal(started.code, 0, started.stderr);
    assert.equal(await exited, 0, stderr);
    const event = (
      JSON.parse(stdout).events as {
        kind: string;
        stateVersion: number;
        outcomes: Record<string, { status: string; reason?: string }>;
      }[]
    )[0]!;
    assert.equal(event.kind, "configure");
    assert.equal(event.outcomes.web1?.status, "succeeded");
    assert.equal(event.outcomes.web3?.status, "superseded", JSON.stringify(event.outcomes));
    assert.match(event.outcomes.web3!.reason!, /superseded: stack state \d+ is newer than \d+/);
    // the newer configure (from the start) told everyone about web2 again
    assert.equal(galley("hosts", "exec", "web1", "--", "rm", "/etc/lab-slow").code, 0);
    for (const host of ["web1", "web2", "web3"]) assert.match(peers(host), /^web1 .*\nweb2 .*\nweb3 .*\n$/);
    const history = json("history", "--stack", "lab", "--limit", "50").out.events as {
      kind: string;
      status: string;
      bundle?: string;
      outcomes: { instance: string; status: string; stateVersion: number; bundle?: string }[];
    }[];
    const superseded = history.flatMap((e) => e.outcomes.filter((o) => o.status === "superseded"));
    assert.ok(superseded.length >= 1);
    // every configure ran one prepared set (the lab's plain cookbooks folder: a digest id), recorded
    // with the event and with each instance that converged
    const configures = history.filter((e) => e.kind === "configure" && e.status === "succeeded");
    assert.ok(configures.length >= 2);
    for (const e of configures) {
      assert.match(e.bundle ?? "", /^digest:[0-9a-f]{64}$/, JSON.stringify(e));
      for (const o of e.outcomes.filter((o) => o.status === "succeeded")) assert.equal(o.bundle, e.bundle);
    }
    assert.equal(new Set(configures.map((e) => e.bundle)).size, 1);
  });

  test("a host killed mid-event is connection_lost; the others are configured without it", async () => {
    const child = spawn(
      process.execPath,
      [galleyBin, "run-recipes", "lab::slow", "--stack", "lab", "--instance", "web3", "--json"],
      { cwd: kitchen, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
    const exited = new Promise<number>((resolve) => child.on("close", (code) => resolve(code ?? -1)));
    // the recipe sleeps 60 s on web3: wait until it runs there, then pull the plug
    await waitForSleep("web3");
    assert.equal(galley("hosts", "kill", "web3").code, 0);
    assert.equal(await exited, 4);
    const out = JSON.parse(stdout);
    const run = (out.events as { kind: string; outcomes: Record<string, { status: string }> }[])[0]!;
    assert.equal(run.kind, "run-recipes");
    assert.equal(run.outcomes.web3?.status, "connection_lost");
    assert.equal(status("web3"), "connection_lost");
    for (const host of ["web1", "web2"]) assert.match(peers(host), /^web1 .*\nweb2 .*\n$/);
  });

  test("shutdown recipes that overrun the layer's shutdown_timeout: the host is stopped anyway", async () => {
    assert.equal(galley("hosts", "exec", "web2", "--", "touch", "/etc/lab-slow-shutdown").code, 0);
    const stop = json("instance", "stop", "web2", "--stack", "lab");
    // the recipes' connection ended with the host: connection_lost, exit 4, and the host is down
    assert.equal(stop.code, 4, stop.stderr);
    const shutdown = (
      stop.out.events as { kind: string; outcomes: Record<string, { status: string }> }[]
    ).find((e) => e.kind === "shutdown");
    assert.equal(shutdown?.outcomes.web2?.status, "connection_lost");
    assert.match(
      stop.stderr,
      /web2 +shutting_down +shutdown recipes still running after 8 s: stopping its host anyway/,
    );
    assert.equal(status("web2"), "stopped");
    const list = json("hosts", "list").out.hosts as { name: string; status: string }[];
    assert.equal(list.find((h) => h.name === "web2")?.status, "stopped");
    assert.match(peers("web1"), /^web1 .*\n$/);
  });

  test("a malformed stack file is refused with file, line and field, and changes nothing", async () => {
    const before = json("history", "--stack", "lab").out.events.length;
    const file = path.join(kitchen, "stacks/lab.yaml");
    const good = await fs.readFile(file, "utf8");
    await fs.writeFile(
      file,
      good.replace(
        "layers: [web], provider: { type: container, init: sysv } }",
        "layers: [web], provider: { type: container, init: upstart } }",
      ),
    );
    try {
      const up = galley("stack", "up", "lab");
      assert.equal(up.code, 2);
      assert.match(up.stderr, /error\[STACK_INVALID\]: .*lab\.yaml:\d+.*init/);
      assert.equal(galley("history", "--stack", "lab").code, 2);
    } finally {
      await fs.writeFile(file, good);
    }
    assert.equal(json("history", "--stack", "lab").out.events.length, before, "no event was recorded");
    assert.equal(status("web1"), "online");
  });

  test("stack down stops every instance", () => {
    const down = json("stack", "down", "lab");
    assert.equal(down.code, 0, down.stderr);
    for (const i of down.out.instances as { name: string; status: string }[])
      assert.ok(["stopped", "setup_failed"].includes(i.status), `${i.name}: ${i.status}`);
  });
});
