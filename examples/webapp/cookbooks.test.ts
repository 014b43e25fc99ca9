import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { CatalogResource } from "../../src/core/catalog.ts";
import { compileRun } from "../../src/cookbooks/solo.ts";
import { releaseTarget } from "../../src/lifecycle/releases.ts";
import { LocalHost } from "../../src/hosts/local.ts";
import { tempDir } from "../../src/resources/testing.ts";
import type { LifecycleEvent } from "../../src/stacks/schema.ts";
import { loadStack } from "../../src/stacks/stack.ts";
import { buildStackState, type DeployingApp, type InstanceFacts, StackView } from "../../src/stacks/state.ts";
import type { InstanceStatus } from "../../src/store/store.ts";

// The webapp example's cookbooks compiled (not converged) against its real stack file, with the
// stack state as the lifecycle builds it: what each layer's recipes make of the online instances.

const here = path.dirname(fileURLToPath(import.meta.url));
const stackFile = path.join(here, "stacks", "webapp.yaml");
const exampleKey = path.join(here, "secret.example.key");
const examplePassword = "example-only-3b9e51c7d2a8";
const run = promisify(execFile);

const addresses: Record<string, string> = {
  lb1: "10.9.0.2",
  app1: "10.9.0.3",
  app2: "10.9.0.4",
  app3: "10.9.0.5",
  db1: "10.9.0.6",
};

/** Every instance online at its address, except those given another status. */
function facts(statuses: Record<string, InstanceStatus> = {}): InstanceFacts[] {
  return Object.entries(addresses).map(([name, address]) => ({
    name,
    status: statuses[name] ?? "online",
    address: statuses[name] === "stopped" ? undefined : address,
  }));
}

async function compileFor(
  instance: string,
  event: LifecycleEvent,
  options: { statuses?: Record<string, InstanceStatus>; deploying?: DeployingApp[] } = {},
): Promise<CatalogResource[]> {
  // its secrets.yaml decrypted with the demo's throwaway key (the kitchen's copy is made by make-app-repo.sh)
  const stack = await loadStack(stackFile, {
    key: async () => Buffer.from((await fs.readFile(exampleKey, "utf8")).trim()),
  });
  const state = buildStackState(stack, facts(options.statuses));
  const view = new StackView(state, instance, {
    event,
    version: 7,
    ...(options.deploying ? { deploying: options.deploying } : {}),
  });
  const layers = stack.instances.find((i) => i.name === instance)!.layers;
  const runList = layers.flatMap((name) => stack.layers.find((l) => l.name === name)!.recipes[event]);
  const { catalog } = await compileRun({
    runList,
    cookbooksDir: path.resolve(path.dirname(stackFile), stack.cookbooks),
    attributeFiles: [],
    host: new LocalHost(instance),
    // the stack's attributes at the stack level, as the lifecycle gives them
    layers: [{ source: { level: "stack", label: `stack ${stack.name}` }, values: stack.attributes }],
    stack: view,
  });
  return catalog.resources;
}

function find(resources: CatalogResource[], id: string): CatalogResource {
  const resource = resources.find((r) => r.id === id);
  assert.ok(resource, `${id} is in the catalog (it has: ${resources.map((r) => r.id).join(", ")})`);
  return resource;
}

const content = (resource: CatalogResource) => String(resource.props.content);

test("webapp lb configure: one server line per online app instance, none for a stopped one", async () => {
  const resources = await compileFor("lb1", "configure", { statuses: { app2: "stopped" } });
  const config = find(resources, "template[/etc/haproxy/haproxy.cfg]");
  const servers = content(config)
    .split("\n")
    .filter((line) => /^\s*server /.test(line))
    .map((line) => line.trim().split(/\s+/).slice(1, 3).join(" "));
  assert.deepEqual(servers, ["app1 10.9.0.3:3000", "app3 10.9.0.5:3000"]);
  assert.match(content(config), /^\s*bind \*:80$/m);
  assert.equal(config.props.verify, "haproxy -c -q -f %{path}");
  // the reload saves every server's state first (test/lb-drain.test.ts), then the states are set
  assert.deepEqual(config.notifies, [
    { action: "run", target: "execute[reload haproxy keeping server states]", timing: "immediate" },
  ]);
  assert.deepEqual(find(resources, "service[haproxy]").actions, ["enable", "start"]);
});

test("webapp lb configure: with no app instance online the backend is there, with no server", async () => {
  const down = { app1: "stopped", app2: "stopped", app3: "setup_failed" } as const;
  const config = content(
    find(await compileFor("lb1", "configure", { statuses: down }), "template[/etc/haproxy/haproxy.cfg]"),
  );
  assert.doesNotMatch(config, /^\s*server /m);
  assert.match(config, /^backend app$/m);
  assert.match(config, /^\s*default_backend app$/m);
});

test("webapp db configure: pg_hba.conf opens the database to each online app instance", async () => {
  const resources = await compileFor("db1", "configure", { statuses: { app3: "stopped" } });
  const hba = find(resources, "template[/etc/postgresql/15/main/pg_hba.conf]");
  const lines = content(hba)
    .split("\n")
    .filter((line) => line.startsWith("host    hello"))
    .map((line) => line.split("#")[0]!.trim().split(/\s+/));
  assert.deepEqual(lines, [
    ["host", "hello", "hello", "10.9.0.3/32", "scram-sha-256"],
    ["host", "hello", "hello", "10.9.0.4/32", "scram-sha-256"],
  ]);
  // Debian's own lines stay: the postgres superuser by peer, passwords on the loopback
  assert.match(content(hba), /^local\s+all\s+postgres\s+peer$/m);
  assert.equal(hba.props.owner, "postgres");
  assert.deepEqual(hba.notifies, [
    { action: "reload", target: "service[postgresql@15-main]", timing: "delayed" },
  ]);
});

test("webapp app configure: the env has the db's address and the app's environment, and is sensitive", async () => {
  const resources = await compileFor("app2", "configure");
  const env = find(resources, "template[/srv/hello/shared/env]");
  const values = parseEnv(content(env));
  assert.equal(values.DB_HOST, "10.9.0.6");
  assert.equal(values.DB_INSTANCE, "db1");
  assert.equal(values.DB_PORT, "5432");
  assert.equal(values.DB_NAME, "hello");
  assert.equal(values.DB_USER, "hello");
  assert.equal(values.DB_PASSWORD, examplePassword);
  assert.equal(values.PORT, "3000");
  assert.equal(values.APP_NAME, "hello");
  assert.equal(env.sensitive, true);
  assert.deepEqual(env.notifies, [{ action: "restart", target: "service[hello]", timing: "delayed" }]);
  // the restart happens only where the app is deployed
  const service = find(resources, "service[hello]");
  assert.deepEqual(service.actions, ["nothing"]);
  assert.deepEqual(service.onlyIf, {
    command: "test -L /srv/hello/current && test -f /etc/systemd/system/hello.service",
  });
});

test("webapp app configure: no db online leaves DB_HOST empty", async () => {
  const env = find(
    await compileFor("app1", "configure", { statuses: { db1: "stopped" } }),
    "template[/srv/hello/shared/env]",
  );
  const values = parseEnv(content(env));
  assert.equal(values.DB_HOST, "");
  assert.equal(values.DB_PASSWORD, examplePassword);
});

test("webapp app deploy: the archive becomes a release, current points at it, systemd runs it", async () => {
  // its secrets.yaml decrypted with the demo's throwaway key (the kitchen's copy is made by make-app-repo.sh)
  const stack = await loadStack(stackFile, {
    key: async () => Buffer.from((await fs.readFile(exampleKey, "utf8")).trim()),
  });
  const app = buildStackState(stack, facts()).apps[0]!;
  const revision = "0123456789abcdef0123456789abcdef01234567";
  const archive = `/var/lib/galley/apps/hello/${revision}.tar.gz`;
  const resources = await compileFor("app1", "deploy", { deploying: [{ ...app, revision, archive }] });
  const release = `/srv/hello/releases/${revision}`;
  const unpack = find(resources, `execute[unpack hello ${revision}]`);
  assert.equal(unpack.props.creates, release);
  assert.deepEqual((unpack.props.command as string[]).slice(-2), [archive, release]);
  assert.equal(content(find(resources, `file[${release}/REVISION]`)), `${revision}\n`);
  const current = find(resources, "link[/srv/hello/current]");
  assert.equal(current.props.to, release);
  assert.deepEqual(current.notifies, [{ action: "restart", target: "service[hello]", timing: "delayed" }]);
  const unit = content(find(resources, "template[/etc/systemd/system/hello.service]"));
  assert.match(unit, /^ExecStart=\/usr\/bin\/node \/srv\/hello\/current\/server\.js$/m);
  assert.match(unit, /^User=app$/m);
  assert.match(unit, /^EnvironmentFile=\/srv\/hello\/shared\/env$/m);
  assert.equal(parseEnv(content(find(resources, "template[/srv/hello/shared/env]"))).DB_HOST, "10.9.0.6");
  assert.deepEqual(find(resources, "service[hello]").actions, ["enable", "start"]);
  find(resources, "user[app]");
  find(resources, "directory[/srv/hello/shared]");
});

test("webapp app deploy with Galley's releases: no release of its own, the unit runs current, no restart", async () => {
  // its secrets.yaml decrypted with the demo's throwaway key (the kitchen's copy is made by make-app-repo.sh)
  const stack = await loadStack(stackFile, {
    key: async () => Buffer.from((await fs.readFile(exampleKey, "utf8")).trim()),
  });
  const app = buildStackState(stack, facts()).apps[0]!;
  const settings = stack.apps[0]!;
  assert.equal(settings.load_balancer?.layer, "lb");
  assert.equal(settings.load_balancer?.backend, "app");
  assert.equal(settings.release?.restart, "systemctl restart hello");
  assert.deepEqual(settings.release?.health_check?.http, {
    path: "/",
    port: 3000,
    method: "GET",
    status: 200,
  });
  const revision = "0123456789abcdef0123456789abcdef01234567";
  const release = releaseTarget(settings, 12)!;
  const resources = await compileFor("app1", "deploy", {
    deploying: [{ ...app, revision, archive: `/var/lib/galley/apps/hello/${revision}.tar.gz`, release }],
  });
  const ids = resources.map((r) => r.id);
  // Galley's release recipes make the release, its folders and current
  for (const mine of [
    "link[/srv/hello/current]",
    "directory[/srv/hello/shared]",
    "directory[/srv/hello/releases]",
  ])
    assert.ok(!ids.includes(mine), `${mine} is left to Galley's release recipes`);
  assert.ok(!ids.some((id) => id.startsWith("execute[unpack")), "no unpack of its own");
  const unit = find(resources, "template[/etc/systemd/system/hello.service]");
  assert.match(content(unit), /^ExecStart=\/usr\/bin\/node \/srv\/hello\/current\/server\.js$/m);
  assert.match(content(unit), /^WorkingDirectory=\/srv\/hello\/current$/m);
  assert.match(content(unit), /^User=app$/m);
  assert.deepEqual(unit.notifies, [
    { action: "run", target: "execute[systemctl daemon-reload]", timing: "immediate" },
  ]);
  // enabled, never restarted by the deploy: Galley's switch restarts it
  assert.deepEqual(find(resources, "service[hello]").actions, ["enable"]);
  assert.deepEqual(find(resources, "template[/srv/hello/shared/env]").notifies, []);
});

test("webapp app undeploy: the service stops, its unit and folder go", async () => {
  // its secrets.yaml decrypted with the demo's throwaway key (the kitchen's copy is made by make-app-repo.sh)
  const stack = await loadStack(stackFile, {
    key: async () => Buffer.from((await fs.readFile(exampleKey, "utf8")).trim()),
  });
  const app = buildStackState(stack, facts()).apps[0]!;
  const resources = await compileFor("app3", "undeploy", {
    deploying: [{ ...app, revision: "", archive: "" }],
  });
  assert.deepEqual(find(resources, "service[hello]").actions, ["stop", "disable"]);
  assert.deepEqual(find(resources, "file[/etc/systemd/system/hello.service]").actions, ["delete"]);
  assert.deepEqual(find(resources, "directory[/srv/hello]").actions, ["delete"]);
});

test("webapp db setup: the role's password is sensitive and checked by logging in", async () => {
  const resources = await compileFor("db1", "setup");
  const role = find(resources, "execute[role hello]");
  assert.equal(role.sensitive, true);
  assert.equal((role.props.env as Record<string, string>).DB_PASSWORD, examplePassword);
  assert.ok(role.notIf && "fn" in role.notIf, "the role is guarded by a login check");
  const database = find(resources, "execute[database hello]");
  assert.deepEqual(database.props.command, ["createdb", "--owner", "hello", "hello"]);
  assert.ok(database.notIf && "command" in database.notIf);
  assert.match(
    content(find(resources, "file[/etc/postgresql/15/main/conf.d/listen.conf]")),
    /^listen_addresses = '\*'$/m,
  );
});

/** systemd's EnvironmentFile syntax as the template writes it: KEY="value" with \-escapes. */
function parseEnv(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"$/.exec(line);
    if (match) values[match[1]!] = match[2]!.replace(/\\(.)/g, "$1");
  }
  return values;
}

test("make-app-repo.sh: a second run with app/ unchanged makes no commit; a change makes one", async () => {
  const dir = await tempDir("galley-webapp-");
  // a copy of the script and the app, so the change below does not touch the example
  await fs.cp(path.join(here, "make-app-repo.sh"), path.join(dir, "make-app-repo.sh"));
  await fs.cp(path.join(here, "app"), path.join(dir, "app"), { recursive: true });
  await fs.cp(exampleKey, path.join(dir, "secret.example.key"));
  await fs.chmod(path.join(dir, "secret.example.key"), 0o644); // as git checks it out
  const repo = path.join(dir, "out", "app.git");
  const commits = async () =>
    (await run("git", [`--git-dir=${repo}`, "rev-list", "--count", "main"])).stdout.trim();

  await run("bash", [path.join(dir, "make-app-repo.sh"), repo]);
  await run("bash", [path.join(dir, "make-app-repo.sh"), repo]);
  assert.equal(await commits(), "1");
  const files = (await run("git", [`--git-dir=${repo}`, "ls-tree", "--name-only", "main"])).stdout;
  assert.deepEqual(files.trim().split("\n"), ["package.json", "server.js"]);
  // the kitchen's key: the demo's throwaway key, private to its owner
  const key = path.join(dir, ".galley", "secret.key");
  assert.equal((await fs.stat(key)).mode & 0o777, 0o600);
  assert.equal(await fs.readFile(key, "utf8"), await fs.readFile(exampleKey, "utf8"));

  await fs.appendFile(path.join(dir, "app", "server.js"), "// changed\n");
  await run("bash", [path.join(dir, "make-app-repo.sh"), repo]);
  assert.equal(await commits(), "2");
});
