import assert from "node:assert/strict";
import { test } from "node:test";
import { envFileText, serviceTarget, unitText } from "./service-unit.ts";

test("service unit: runs exec with sh in current, as the release user, with the environment file", () => {
  const target = serviceTarget(
    "hello",
    "/srv/hello",
    { exec: "node server.js", environment: { A: "2" } },
    "app",
    {
      A: "1",
      PORT: "3000",
    },
  );
  assert.equal(target.unit, "/etc/systemd/system/hello.service");
  assert.equal(target.envFile, "/srv/hello/hello.env");
  assert.deepEqual(target.environment, { A: "2", PORT: "3000" });
  const unit = unitText(target, "/srv/hello/current", "hello");
  assert.match(unit, /^User=app$/m);
  assert.match(unit, /^WorkingDirectory=\/srv\/hello\/current$/m);
  assert.match(unit, /^EnvironmentFile=\/srv\/hello\/hello\.env$/m);
  assert.match(unit, /^ExecStart=\/bin\/sh -c "exec node server\.js"$/m);
  assert.match(unit, /^WantedBy=multi-user\.target$/m);
});

test("service unit: its own user wins; none at all runs as root (no User=)", () => {
  const own = serviceTarget("hello", "/srv/hello", { exec: "x", user: "web", environment: {} }, "app", {});
  assert.match(unitText(own, "/c", "hello"), /^User=web$/m);
  const none = serviceTarget("hello", "/srv/hello", { exec: "x", environment: {} }, undefined, {});
  assert.doesNotMatch(unitText(none, "/c", "hello"), /^User=/m);
});

test("service unit: quotes, backslashes, % and $ in exec reach sh as written", () => {
  const target = serviceTarget(
    "hello",
    "/d",
    { exec: `node "a b.js" 50% $HOME \\n`, environment: {} },
    undefined,
    {},
  );
  assert.match(
    unitText(target, "/c", "hello"),
    /^ExecStart=\/bin\/sh -c "exec node \\"a b\.js\\" 50%% \$\$HOME \\\\n"$/m,
  );
});

test('environment file: one KEY="value" a line, with systemd\'s escapes', () => {
  assert.equal(envFileText({ A: "plain", B: 'q"b\\d$e`f' }), 'A="plain"\nB="q\\"b\\\\d\\$e\\`f"\n');
  assert.equal(envFileText({}), "");
});
