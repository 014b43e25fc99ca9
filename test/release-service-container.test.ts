import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";

// release.service on a real systemd: one container host (init systemd) whose app Galley runs as a
// unit it writes, with its secret from an encrypted secrets: file in the environment file. The
// app answers with its revision and a hash of the secret (never the secret itself).

const root = process.getuid?.() === 0;
const skip = root ? false : "needs root on Linux: instances are container hosts";
const secret = "svc-5d0e8a13f7-secret";
// what systemd must read back as written: quotes, a backslash, $ and a backquote
const mode = 'prod "quoted" $HOME \\ `x` 100%';
const sha = (text: string) => createHash("sha256").update(text).digest("hex").slice(0, 16);

// CommonJS: Debian 12's nodejs 18, no package.json
const server = (revision: string) => `const { createHash } = require("node:crypto");
const { createServer } = require("node:http");
const hash = createHash("sha256").update(process.env.DB_PASSWORD ?? "").digest("hex").slice(0, 16);
createServer((_, res) => res.end("${revision} " + hash + " " + process.env.MODE + "\\n")).listen(Number(process.env.PORT));
`;

describe("release.service on a container host with systemd", { skip, timeout: 600_000 }, () => {
  let kitchen = "";
  let address = "";
  const galley = (...args: string[]) => {
    const result = cli([...args, "--json"], kitchen);
    assert.equal(result.code, 0, `galley ${args.join(" ")}: ${result.stderr.slice(-3000)}`);
    assert.ok(!(result.stdout + result.stderr).includes(secret), "no output shows the secret");
    return JSON.parse(result.stdout);
  };
  const archive = async (revision: string) => {
    const app = path.join(kitchen, "app");
    await fs.mkdir(app, { recursive: true });
    await fs.writeFile(path.join(app, "server.js"), server(revision));
    execFileSync("tar", ["-czf", path.join(kitchen, "hello.tar.gz"), "-C", app, "."]);
  };
  // a new connection each time: a kept-alive one would still lead to the process a restart ended
  const answer = async () =>
    (await (await fetch(`http://${address}:3000/`, { headers: { connection: "close" } })).text()).trim();
  const onHost = (file: string) => path.join(kitchen, ".galley", "hosts", "svc1", "merged", file);

  before(async () => {
    kitchen = await tempDir("galley-service-");
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks"));
    await archive("one");
    // the kitchen's own key, and the encrypted file the stack names
    const keyFile = path.join(kitchen, ".galley", "secret.key");
    await fs.mkdir(path.dirname(keyFile), { recursive: true });
    cli(["secrets", "keygen", "--key-file", keyFile], kitchen);
    const secrets = path.join(kitchen, "stacks", "secrets.yaml");
    await fs.writeFile(secrets, `db: { password: ${secret} }\n`);
    const encrypted = cli(["secrets", "encrypt", secrets, "--key-file", keyFile], kitchen);
    assert.equal(encrypted.code, 0, encrypted.stderr);
    await fs.writeFile(
      path.join(kitchen, "stacks", "svc.yaml"),
      `name: svc
cookbooks: ../cookbooks
secrets: [secrets.yaml]
layers:
  - { name: app, packages: [nodejs] }
instances:
  - { name: svc1, layers: [app], provider: { type: container, init: systemd } }
apps:
  - name: hello
    layers: [app]
    source: { type: archive, url: ../hello.tar.gz }
    environment: { PORT: "3000", DB_PASSWORD: { secret: db.password } }
    release:
      service:
        exec: node server.js --limit 100% "$HOME"
        environment: { MODE: ${JSON.stringify(mode)} }
      health_check: { http: { path: /, port: 3000 } }
`,
    );
  });
  after(() => {
    if (kitchen) cli(["hosts", "down"], kitchen);
  });

  test("stack up: the first deployment writes, enables and starts the unit; the app has its secret", async () => {
    const up = galley("stack", "up", "svc");
    address = up.instances.find((i: { name: string }) => i.name === "svc1").address;
    assert.equal(await answer(), `one ${sha(secret)} ${mode}`);
    const unit = await fs.readFile(onHost("etc/systemd/system/hello.service"), "utf8");
    assert.match(unit, /^WorkingDirectory=\/srv\/hello\/current$/m);
    assert.match(unit, /^EnvironmentFile=\/srv\/hello\/hello\.env$/m);
    const env = onHost("srv/hello/hello.env");
    assert.equal((await fs.stat(env)).mode & 0o777, 0o600);
    assert.match(await fs.readFile(env, "utf8"), new RegExp(`^DB_PASSWORD="${secret}"$`, "m"));
    // enabled: systemd's own link (absolute inside the host: read, not followed)
    assert.equal(
      await fs.readlink(onHost("etc/systemd/system/multi-user.target.wants/hello.service")),
      "/etc/systemd/system/hello.service",
    );
  });

  test("a deploy of a new revision restarts the unit into it", async () => {
    await archive("two");
    const deployed = galley("deploy", "hello", "--stack", "svc");
    assert.equal(deployed.deployment.status, "succeeded");
    assert.equal(await answer(), `two ${sha(secret)} ${mode}`);
  });

  test("deploying the pinned release again changes nothing: unit, environment file, enable, no restart", async () => {
    const before = await answer();
    const again = galley("run", "deploy", "--stack", "svc", "--app", "hello");
    const outcome = again.events[0].outcomes.svc1;
    assert.equal(outcome.status, "succeeded");
    assert.equal(outcome.summary.changed, 0, JSON.stringify(outcome));
    assert.equal(await answer(), before);
  });

  test("the secret is in no file of the kitchen's .galley but the host's own", async () => {
    const held: string[] = [];
    const walk = async (dir: string) => {
      for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory() && full !== path.join(kitchen, ".galley", "hosts")) await walk(full);
        else if (entry.isFile() && (await fs.readFile(full)).includes(secret)) held.push(full);
      }
    };
    await walk(path.join(kitchen, ".galley"));
    assert.deepEqual(held, []);
  });
});
