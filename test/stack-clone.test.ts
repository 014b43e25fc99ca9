import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { loadStack } from "../src/stacks/stack.ts";
import { cli } from "./support/cli.ts";

const production = `# production: the real thing
name: production
layers:
  - name: app
    recipes: { configure: [web::configure] }
instances:
  - { name: app1, layers: [app] }       # the first app server
  - { name: app2, layers: [app], provider: { type: container, init: sysv } }
  - { name: legacy, layers: [app], provider: { type: ssh, address: 192.0.2.10 } }
`;

test("stack clone: a new name, instances renamed, comments kept, ssh instances left out and listed", async () => {
  const dir = await tempDir();
  await fs.mkdir(path.join(dir, "stacks"));
  await fs.writeFile(path.join(dir, "stacks/production.yaml"), production);
  const run = cli(["stack", "clone", "production", "--to", "stacks/staging.yaml", "--json"], dir);
  assert.equal(run.code, 0, run.stderr);
  const out = JSON.parse(run.stdout);
  assert.deepEqual(out.instances, { app1: "staging-app1", app2: "staging-app2" });
  assert.deepEqual(out.leftOut, ["legacy (192.0.2.10)"]);
  const text = await fs.readFile(path.join(dir, "stacks/staging.yaml"), "utf8");
  assert.match(text, /# production: the real thing/);
  assert.match(text, /# the first app server/);
  const staging = await loadStack(path.join(dir, "stacks/staging.yaml"));
  assert.equal(staging.name, "staging");
  assert.deepEqual(
    staging.instances.map((i) => [i.name, i.provider]),
    [
      ["staging-app1", { type: "container" }],
      ["staging-app2", { type: "container", init: "sysv" }],
    ],
  );
  assert.deepEqual(staging.layers, (await loadStack(path.join(dir, "stacks/production.yaml"))).layers);
  // never over an existing file, never under the same name
  const again = cli(["stack", "clone", "production", "--to", "stacks/staging.yaml"], dir);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /staging\.yaml exists already/);
  const same = cli(
    ["stack", "clone", "production", "--to", "stacks/other.yaml", "--name", "production"],
    dir,
  );
  assert.equal(same.code, 2);
  assert.match(same.stderr, /a name other than production/);
});

test("stack commands name a missing stack and an unknown instance with a hint", async () => {
  const dir = await tempDir();
  const missing = cli(["stack", "status", "nowhere"], dir);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /error\[STACK_INVALID\]: no stack file .*stacks\/nowhere\.yaml/);
  await fs.mkdir(path.join(dir, "stacks"));
  await fs.writeFile(path.join(dir, "stacks/production.yaml"), production);
  // a stack's cookbooks must exist: the default is the kitchen's cookbooks.yaml (or cookbooks/)
  const noCookbooks = cli(["stack", "status", "production"], dir);
  assert.equal(noCookbooks.code, 2);
  assert.match(noCookbooks.stderr, /production\.yaml: cookbooks: \.\.\/cookbooks\.yaml does not exist/);
  await fs.mkdir(path.join(dir, "cookbooks"));
  // and so must the cookbooks of the recipes its layers name
  const noRecipe = cli(["stack", "status", "production"], dir);
  assert.equal(noRecipe.code, 2);
  assert.match(
    noRecipe.stderr,
    /error\[STACK_INVALID\]: .*production\.yaml:5: layer app, configure: recipe web::configure names no cookbook of the kitchen/,
  );
  await fs.mkdir(path.join(dir, "cookbooks/web/recipes"), { recursive: true });
  await fs.writeFile(path.join(dir, "cookbooks/web/cookbook.yaml"), "name: web\nversion: 1.0.0\n");
  await fs.writeFile(path.join(dir, "cookbooks/web/recipes/configure.ts"), "export default () => {};\n");
  const unknown = cli(["instance", "start", "app9", "--stack", "production"], dir);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /the stack has no instance "app9"/);
  assert.match(unknown.stderr, /hint: its instances: app1, app2, legacy/);
  const event = cli(["run", "deploy-all", "--stack", "production"], dir);
  assert.equal(event.code, 2);
  assert.match(event.stderr, /events: setup, configure, deploy, undeploy, shutdown/);
});
