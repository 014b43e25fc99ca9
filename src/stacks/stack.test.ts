import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { loadStack } from "./stack.ts";

const valid = `name: production
attributes: { region: home }
layers:
  - name: lb
    packages: [haproxy]
    recipes: { configure: [webapp::lb] }
  - name: app
    recipes: { setup: [webapp::node], deploy: [webapp::deploy] }
instances:
  - { name: lb1, layers: [lb] }
  - name: app1
    layers: [app]
    provider: { type: ssh, address: 10.0.0.5, user: admin, become: true }
    scaling: { type: time, schedule: { monday: [8, 9, 10] } }
apps:
  - name: hello
    layers: [app]
    source: { type: git, url: ../repos/hello.git }
    environment: { PORT: "3000" }
`;

async function write(text: string): Promise<string> {
  const file = path.join(await tempDir(), "production.yaml");
  await fs.writeFile(file, text);
  return file;
}

test("stack: a valid file loads with its defaults filled in", async () => {
  const stack = await loadStack(await write(valid));
  assert.equal(stack.name, "production");
  assert.deepEqual(stack.layers[0]!.recipes.configure, ["webapp::lb"]);
  assert.deepEqual(stack.layers[0]!.recipes.setup, []);
  assert.deepEqual(stack.instances[0]!.provider, { type: "container" });
  assert.deepEqual(stack.instances[0]!.scaling, { type: "always" });
  assert.equal(stack.instances[1]!.provider.type, "ssh");
  assert.deepEqual(stack.apps[0]!.source, { type: "git", url: "../repos/hello.git", revision: "HEAD" });
  assert.equal(stack.cookbooks, "../cookbooks.yaml");
});

test("stack: a wrong field names the file, the line and the field", async () => {
  const file = await write(valid.replace("packages: [haproxy]", "pakages: [haproxy]"));
  await assert.rejects(loadStack(file), (error: Error & { code: string }) => {
    assert.equal(error.code, "STACK_INVALID");
    assert.match(error.message, new RegExp(`${file}:5: .*unknown field "pakages"`));
    return true;
  });
});

test("stack: an instance naming a missing layer is refused with the layers there are", async () => {
  const file = await write(valid.replace("{ name: lb1, layers: [lb] }", "{ name: lb1, layers: [balancer] }"));
  await assert.rejects(loadStack(file), (error: Error & { code: string; hint: string }) => {
    assert.match(error.message, new RegExp(`${file}:10: instances\\.0\\.layers: no layer named "balancer"`));
    assert.match(error.hint, /lb, app/);
    return true;
  });
});

test("stack: two instances with one name, an unknown event, a bad scaling type are refused", async () => {
  await assert.rejects(
    loadStack(await write(valid.replace("name: app1", "name: lb1"))),
    /already the name of instances\.0/,
  );
  await assert.rejects(
    loadStack(await write(valid.replace("configure: [webapp::lb]", "reconfigure: [webapp::lb]"))),
    /unknown field "reconfigure"/,
  );
  await assert.rejects(
    loadStack(await write(valid.replace("type: time", "type: sometimes"))),
    /STACK_INVALID|scaling/,
  );
  await assert.rejects(loadStack("/nonexistent/stack.yaml"), /cannot read the stack file/);
});

test("stack: the JSON Schema shipped for editors is the one the validating schema makes", async () => {
  const { stackJsonSchema } = await import("./json-schema.ts");
  const shipped = await fs.readFile(new URL("../../schemas/stack.schema.json", import.meta.url), "utf8");
  assert.equal(
    shipped,
    `${JSON.stringify(stackJsonSchema(), null, 2)}\n`,
    "regenerate schemas/stack.schema.json: npm run docs",
  );
});
