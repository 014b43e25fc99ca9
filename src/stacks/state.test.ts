import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { compile } from "../core/compile.ts";
import { LocalHost } from "../hosts/local.ts";
import { tempDir } from "../resources/testing.ts";
import { resourceTypes } from "../resources/index.ts";
import { stackSchema } from "./schema.ts";
import { buildStackState, StackView } from "./state.ts";
import * as v from "valibot";

const stack = v.parse(stackSchema, {
  name: "shop",
  attributes: { region: "home" },
  layers: [{ name: "lb", packages: ["haproxy"] }, { name: "app" }, { name: "db", short_name: "pg" }],
  instances: [
    { name: "lb1", layers: ["lb"] },
    { name: "app1", layers: ["app"] },
    { name: "app2", layers: ["app", "db"] },
    { name: "app3", layers: ["app"] },
  ],
  apps: [{ name: "hello", layers: ["app"], source: { type: "git", url: "../hello.git" } }],
});

const state = buildStackState(stack, [
  { name: "lb1", status: "online", address: "10.0.0.2" },
  { name: "app1", status: "online", address: "10.0.0.3" },
  { name: "app2", status: "stopping", address: "10.0.0.4" },
  { name: "app3", status: "online", address: "10.0.0.5" },
]);

test("the stack state lists layers with their instances and instances with status and address", () => {
  assert.deepEqual(
    state.layers.map((l) => [l.name, l.shortName, l.instances]),
    [
      ["lb", "lb", ["lb1"]],
      ["app", "app", ["app1", "app2", "app3"]],
      ["db", "pg", ["app2"]],
    ],
  );
  assert.deepEqual(state.instances[2], {
    name: "app2",
    layers: ["app", "db"],
    status: "stopping",
    address: "10.0.0.4",
    hostname: "app2",
    provider: "container",
    inService: true,
    weight: 100,
  });
  // an instance the store does not know yet is stopped, without an address
  const fresh = buildStackState(stack, []);
  assert.deepEqual(
    fresh.instances.map((i) => [i.status, i.address]),
    fresh.instances.map(() => ["stopped", undefined]),
  );
  assert.equal(JSON.stringify(buildStackState(stack, [...[]])), JSON.stringify(fresh), "deterministic");
});

test("r.stack.inService: the online instances a load balancer sends traffic to, not those a deployment drained", () => {
  const draining = buildStackState(stack, [
    { name: "lb1", status: "online", address: "10.0.0.2" },
    { name: "app1", status: "online", address: "10.0.0.3", inService: false },
    { name: "app2", status: "stopping", address: "10.0.0.4", inService: true },
    { name: "app3", status: "online", address: "10.0.0.5", inService: true },
  ]);
  assert.deepEqual(
    draining.instances.map((i) => [i.name, i.inService]),
    [
      ["lb1", true],
      ["app1", false],
      ["app2", true],
      ["app3", true],
    ],
    "an instance whose record says nothing is in service",
  );
  const view = new StackView(draining, "lb1", { event: "configure", version: 8 });
  assert.deepEqual(
    view.inService("app").map((i) => i.name),
    ["app3"],
    "app1 is drained, app2 is not online",
  );
  assert.deepEqual(
    view.online("app").map((i) => i.name),
    ["app1", "app3"],
    "online still lists a drained instance",
  );
  assert.deepEqual(
    view.inService().map((i) => i.name),
    ["lb1", "app3"],
  );
  assert.throws(() => view.inService("web"), /stack shop has no layer "web"/);
  // in service sits at a fixed place in each instance: equal states compare equal as text
  const keys = Object.keys(draining.instances[1]!);
  assert.deepEqual(keys, [
    "name",
    "layers",
    "status",
    "address",
    "hostname",
    "provider",
    "inService",
    "weight",
  ]);
  assert.equal(JSON.stringify(buildStackState(stack, [])), JSON.stringify(buildStackState(stack, [])));
});

test("r.stack answers the usual questions from one instance's point of view", () => {
  const view = new StackView(state, "lb1", { event: "configure", version: 7 });
  assert.deepEqual(
    view.online("app").map((i) => `${i.name} ${i.address}`),
    ["app1 10.0.0.3", "app3 10.0.0.5"],
    "app2 is stopping: not a backend any more",
  );
  assert.deepEqual(
    view.instances("app").map((i) => i.name),
    ["app1", "app2", "app3"],
  );
  assert.equal(view.instance.name, "lb1");
  assert.equal(view.inLayer("lb"), true);
  assert.deepEqual(view.appsHere(), []);
  assert.deepEqual(
    new StackView(state, "app1", { event: "deploy", version: 7 }).appsHere().map((a) => a.name),
    ["hello"],
  );
  assert.equal(view.version, 7);
  assert.equal(view.toJSON().instance, "lb1");
  assert.throws(() => view.online("web"), /stack shop has no layer "web".*/);
  assert.throws(
    () => view.app("nope"),
    (error: Error & { hint?: string }) => /its apps are: hello/.test(error.hint ?? ""),
  );
  assert.throws(() => new StackView(state, "ghost", { event: "setup", version: 1 }), /not in stack shop/);
});

test("a recipe reads r.stack in a stack run; elsewhere reading it is a USAGE error naming the recipe", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "peers.ts");
  await fs.writeFile(
    file,
    `export default function (r) {
  r.file("/tmp/peers", { content: r.stack.online("app").map((i) => i.name).join(",") });
}
`,
  );
  const host = new LocalHost();
  const runList = {
    items: [file],
    entries: async () => [{ cookbook: undefined, recipe: file, file }],
    resolveInclude: async () => {
      throw new Error("no includes");
    },
    cookbookDir: () => dir,
    dependsOn: () => false,
  };
  const options = {
    runList,
    attributes: {},
    facts: await host.facts(),
    hostName: "lb1",
    types: resourceTypes,
  };
  const catalog = await compile({
    ...options,
    stack: new StackView(state, "lb1", { event: "configure", version: 1 }),
  });
  assert.equal((catalog.resources[0]!.props as { content: string }).content, "app1,app3");
  await assert.rejects(compile(options), (error: Error & { code?: string }) => {
    assert.equal(error.code, "USAGE");
    assert.match(error.message, /peers\.ts reads r\.stack, which only a stack's lifecycle runs have/);
    return true;
  });
});
