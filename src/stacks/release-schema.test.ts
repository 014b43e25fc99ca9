import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { loadStack } from "./stack.ts";

// An app's `release` and `load_balancer` sections: defaults, and bad values refused with the
// file, the line and the field.

const stack = (app: string) => `name: production
layers:
  - name: lb
  - name: app
apps:
  - name: hello
    layers: [app]
    source: { type: git, url: ../repos/hello.git }
${app}`;

const full = `    release:
      deploy_to: /opt/apps
      keep: 3
      user: app
      shared: { files: [.env], dirs: [log, tmp/cache] }
      build: npm ci --omit=dev
      migrate: { recipes: [app::migrate] }
      restart: systemctl restart hello
      hooks:
        before_symlink: ./bin/check
        after_restart: { recipes: [app::warm] }
      health_check:
        http: { path: /health, port: 3000, body: ok }
    load_balancer: { layer: lb }
`;

async function write(text: string): Promise<string> {
  const file = path.join(await tempDir(), "production.yaml");
  await fs.writeFile(file, text);
  return file;
}

/** loadStack fails with STACK_INVALID, a message matching `at` (after the file name) and the field. */
async function refused(app: string, at: RegExp): Promise<void> {
  const file = await write(stack(app));
  await assert.rejects(loadStack(file), (error: Error & { code: string }) => {
    assert.equal(error.code, "STACK_INVALID");
    assert.ok(error.message.startsWith(`${file}:`), error.message);
    assert.match(error.message.slice(file.length), at);
    return true;
  });
}

test("stack release: the settings load with their defaults", async () => {
  const app = (await loadStack(await write(stack(full)))).apps[0]!;
  assert.deepEqual(app.release, {
    deploy_to: "/opt/apps",
    keep: 3,
    user: "app",
    shared: { files: [".env"], dirs: ["log", "tmp/cache"] },
    build: "npm ci --omit=dev",
    migrate: { recipes: ["app::migrate"] },
    restart: "systemctl restart hello",
    hooks: { before_symlink: "./bin/check", after_restart: { recipes: ["app::warm"] } },
    health_check: {
      http: { path: "/health", port: 3000, method: "GET", status: 200, body: "ok" },
      timeout: 5,
      retries: 10,
      interval: 1,
    },
  });
  assert.deepEqual(app.load_balancer, {
    layer: "lb",
    backend: "app",
    type: "haproxy",
    socket: "/run/haproxy/admin.sock",
    drain_timeout: 30,
  });
  const bare = (await loadStack(await write(stack("    release: {}\n")))).apps[0]!;
  assert.deepEqual(bare.release, { deploy_to: "/srv", keep: 5, shared: { files: [], dirs: [] }, hooks: {} });
  assert.equal(bare.load_balancer, undefined);
  const none = (await loadStack(await write(stack("")))).apps[0]!;
  assert.equal(none.release, undefined);
});

test("stack release: bad values are refused naming the file, the line and the field", async () => {
  await refused(
    full.replace("dirs: [log, tmp/cache]", "dirs: [log, ../etc]"),
    /^:13: apps\.0\.release\.shared\.dirs\.1: a relative path without \.\./,
  );
  await refused(
    full.replace("files: [.env]", "files: [/etc/passwd]"),
    /^:13: apps\.0\.release\.shared\.files\.0: a path relative to the release/,
  );
  await refused(
    full.replace("deploy_to: /opt/apps", "deploy_to: opt/apps"),
    /^:10: apps\.0\.release\.deploy_to: an absolute path/,
  );
  await refused(full.replace("keep: 3", "keep: 0"), /^:11: apps\.0\.release\.keep: .*>=1/);
  await refused(
    full.replace("port: 3000", "port: 70000"),
    /^:21: apps\.0\.release\.health_check\.http\.port: .*<=65535/,
  );
  await refused(
    full.replace(
      "http: { path: /health, port: 3000, body: ok }",
      "command: curl -fsS localhost:3000/\n        http: { port: 3000 }",
    ),
    /^:21: apps\.0\.release\.health_check: give exactly one of http or command/,
  );
  await refused(
    full.replace("        http: { path: /health, port: 3000, body: ok }\n", "        timeout: 3\n"),
    /health_check: give exactly one of http or command/,
  );
  await refused(
    full.replace("timeout: 5", "").replace("body: ok }", "body: ok }\n        timeout: 301"),
    /^:22: apps\.0\.release\.health_check\.timeout: .*<=300/,
  );
  await refused(
    full.replace("migrate: { recipes: [app::migrate] }", "migrate: { recipe: app::migrate }"),
    /^:15: apps\.0\.release\.migrate: a command \(a string\) or \{ recipes/,
  );
  await refused(full.replace("keep: 3", "kept: 3"), /^:11: apps\.0\.release: unknown field "kept"/);
  await refused(
    full.replace("before_symlink:", "before_link:"),
    /^:18: apps\.0\.release\.hooks: unknown field "before_link"/,
  );
});

test("stack load_balancer: its layer must be a layer of the stack; type and drain_timeout are checked", async () => {
  await refused(
    full.replace("{ layer: lb }", "{ layer: balancer }"),
    /^:22: apps\.0\.load_balancer\.layer: no layer named "balancer"/,
  );
  await refused(
    full.replace("{ layer: lb }", "{ layer: lb, type: nginx }"),
    /^:22: apps\.0\.load_balancer\.type: /,
  );
  await refused(
    full.replace("{ layer: lb }", "{ layer: lb, drain_timeout: 0 }"),
    /^:22: apps\.0\.load_balancer\.drain_timeout: .*>=1/,
  );
  await refused(full.replace("{ layer: lb }", "{ backend: app }"), /^:22: apps\.0\.load_balancer\.layer: /);
  const app = (
    await loadStack(
      await write(stack(full.replace("{ layer: lb }", "{ layer: lb, backend: web, drain_timeout: 5 }"))),
    )
  ).apps[0]!;
  assert.equal(app.load_balancer?.backend, "web");
  assert.equal(app.load_balancer?.drain_timeout, 5);
});
