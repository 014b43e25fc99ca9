import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { describe, test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";
import { startSshd } from "./support/sshd.ts";

// A stack whose app environment takes its database password from an encrypted attribute file
// (`secrets:` + `{ secret: db.password }`), deployed and configured on this machine through a real
// sshd: the password reaches the host (the app's environment file, a recipe's config file) and
// shows in no output, no report, no row of the store, no history or deployment JSON.

const root = process.getuid?.() === 0;
const password = "pw-9c41e7d2b8-never-shown";

// every file under `dir`, as bytes: the store (.galley/galley.db and its -wal), reports, caches
function filesHolding(dir: string, text: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && statSync(full).size < 64 << 20 && readFileSync(full).includes(text))
        found.push(full);
    }
  };
  walk(dir);
  return found;
}

describe("a stack's secrets through deploy and configure", {
  skip: root ? false : "needs root (sshd as root)",
}, () => {
  test("the password from secrets.yaml reaches the host and shows nowhere else", async (t) => {
    const sshd = await startSshd(["root"]);
    t.after(() => sshd.stop());
    const kitchen = await tempDir("galley-stack-secrets-");
    const srv = path.join(kitchen, "srv");
    const out = path.join(kitchen, "out");
    await fs.mkdir(out);
    await fs.mkdir(path.join(kitchen, "stacks"));
    await fs.mkdir(path.join(kitchen, "cookbooks/web/recipes"), { recursive: true });
    await fs.writeFile(path.join(kitchen, "cookbooks/web/cookbook.yaml"), "name: web\nversion: 1.0.0\n");
    // the stack-level attributes hold the decrypted file: a recipe writes the password into a config file
    await fs.writeFile(
      path.join(kitchen, "cookbooks/web/recipes/configure.ts"),
      `export default function (r) {\n  r.file("${out}/db.conf", { content: "password=" + r.attrs.db.password + "\\n", mode: 0o600 });\n}\n`,
    );
    const app = path.join(kitchen, "app");
    await fs.mkdir(app);
    await fs.writeFile(path.join(app, "server.js"), "console.log('hello')\n");
    execFileSync("tar", ["-czf", path.join(kitchen, "hello.tar.gz"), "-C", app, "."]);

    const outputs: string[] = [];
    const galley = (args: string[], env: Record<string, string> = {}) => {
      const result = cli(args, kitchen, env);
      outputs.push(result.stdout, result.stderr);
      assert.equal(result.code, 0, `galley ${args.join(" ")}: ${result.stderr}`);
      return result;
    };
    const keyFile = path.join(kitchen, "secret.key");
    galley(["secrets", "keygen", "--key-file", keyFile]);
    const secretsFile = path.join(kitchen, "stacks", "secrets.yaml");
    await fs.writeFile(secretsFile, `db:\n  password: ${password}\n`);
    galley(["secrets", "encrypt", secretsFile, "--key-file", keyFile]);
    assert.ok(!readFileSync(secretsFile, "utf8").includes(password));

    await fs.writeFile(
      path.join(kitchen, "stacks/web.yaml"),
      `name: web
cookbooks: ../cookbooks
secrets: [secrets.yaml]
attributes: { db: { name: hello } }
layers:
  - name: app
    recipes: { configure: [web::configure] }
instances:
  - name: app1
    layers: [app]
    provider:
      type: ssh
      address: 127.0.0.1
      port: ${sshd.port}
      user: root
      key: ${sshd.clientKeyFile}
      known_hosts: ${sshd.knownHostsFile}
apps:
  - name: hello
    layers: [app]
    source: { type: archive, url: ../hello.tar.gz }
    environment:
      PORT: "3000"
      DB_PASSWORD: { secret: db.password }
    release:
      deploy_to: ${srv}
      # the app's environment file, as the app's build makes it from its environment
      build: 'printf "DB_PASSWORD=%s\\n" "$DB_PASSWORD" > app.env'
      restart: test -s app.env
`,
    );
    // without the key: one line naming the file and what to pass, before anything runs
    const nokey = cli(["stack", "up", "web", "--json"], kitchen, { GALLEY_SECRET_KEY_FILE: "" });
    outputs.push(nokey.stdout, nokey.stderr);
    assert.notEqual(nokey.code, 0);
    assert.match(
      nokey.stdout + nokey.stderr,
      /SECRET_INVALID.*web\.yaml:3: secrets: secrets\.yaml: no secret key given/,
    );

    // up: setup, configure, the app's first deployment; then a deploy and a configure on their own
    galley(["stack", "up", "web", "--json", "--key-file", keyFile]);
    galley(["deploy", "hello", "--stack", "web", "--json"], { GALLEY_SECRET_KEY_FILE: keyFile });
    galley(["run", "configure", "--stack", "web", "--json", "--key-file", keyFile]);
    // text output too
    galley(["run", "configure", "--stack", "web", "--key-file", keyFile]);

    // the value reached the host
    const current = path.join(srv, "hello", "current");
    assert.equal(await fs.readFile(path.join(current, "app.env"), "utf8"), `DB_PASSWORD=${password}\n`);
    assert.equal(await fs.readFile(path.join(out, "db.conf"), "utf8"), `password=${password}\n`);

    // what reads the store needs no key, and shows no value
    const history = galley(["history", "--stack", "web", "--json"]);
    const events = JSON.parse(history.stdout).events as { id: number; kind: string; stateVersion: number }[];
    assert.ok(events.length >= 3);
    // the stored state holds (sensitive) where the state in memory holds the password: still, the
    // same stack gives the same state version, not a new one per run
    const configures = events.filter((e) => e.kind === "configure").sort((a, b) => b.id - a.id);
    assert.equal(configures[0]!.stateVersion, configures[1]!.stateVersion);
    for (const event of events) galley(["history", "--stack", "web", "--event", String(event.id), "--json"]);
    const list = JSON.parse(galley(["deployments", "--stack", "web", "--json"]).stdout);
    const ids = (list.deployments as { id: number }[]).map((d) => d.id);
    assert.equal(ids.length, 2);
    for (const id of ids) {
      const show = galley(["deployment", "show", String(id), "--stack", "web", "--json"]);
      assert.equal(JSON.parse(show.stdout).deployment.status, "succeeded");
    }
    galley(["stack", "status", "web", "--json"]);

    const shown = outputs.filter((text) => text.includes(password));
    assert.deepEqual(shown, [], "no output shows the password");
    assert.deepEqual(
      filesHolding(path.join(kitchen, ".galley"), password),
      [],
      "no store row, report or cache holds it",
    );
  });
});
