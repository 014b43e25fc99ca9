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

test("stack: time zones, auto healing and a layer's load-based scaling get their defaults", async () => {
  const text = valid
    .replace(
      "recipes: { configure: [webapp::lb] }",
      "recipes: { configure: [webapp::lb] }\n    auto_healing: true",
    )
    .replace(
      "recipes: { setup: [webapp::node], deploy: [webapp::deploy] }",
      "recipes: { setup: [webapp::node], deploy: [webapp::deploy] }\n    load_based: { up: { cpu: 80 }, down: { cpu: 20, load: 0.5, instances: 2 } }",
    )
    .replace("{ monday: [8, 9, 10] }", "{ monday: [8, 9, 10] }, timezone: Europe/Paris");
  const stack = await loadStack(await write(text));
  assert.equal(stack.layers[0]!.auto_healing, true);
  assert.equal(stack.layers[1]!.auto_healing, false);
  assert.deepEqual(stack.layers[1]!.load_based, {
    up: { cpu: 80, instances: 1, wait_minutes: 5, ignore_minutes: 10 },
    down: { cpu: 20, load: 0.5, instances: 2, wait_minutes: 5, ignore_minutes: 10 },
  });
  assert.deepEqual(stack.instances[1]!.scaling, {
    type: "time",
    schedule: { monday: [8, 9, 10] },
    timezone: "Europe/Paris",
  });
  const utc = await loadStack(await write(valid));
  assert.equal((utc.instances[1]!.scaling as { timezone: string }).timezone, "UTC");
});

test("stack: an unknown time zone, a threshold without a metric, the old per-instance thresholds are refused", async () => {
  await assert.rejects(
    loadStack(
      await write(valid.replace("{ monday: [8, 9, 10] }", "{ monday: [8] }, timezone: Mars/Olympus")),
    ),
    (error: Error & { code: string }) => {
      assert.equal(error.code, "STACK_INVALID");
      assert.match(error.message, /:14: .*an IANA time zone name/);
      return true;
    },
  );
  await assert.rejects(
    loadStack(
      await write(
        valid.replace(
          "recipes: { setup: [webapp::node], deploy: [webapp::deploy] }",
          "recipes: { setup: [webapp::node], deploy: [webapp::deploy] }\n    load_based: { up: { instances: 2 }, down: { cpu: 20 } }",
        ),
      ),
    ),
    /give at least one of cpu, memory or load/,
  );
  await assert.rejects(
    loadStack(
      await write(
        valid.replace(
          "scaling: { type: time, schedule: { monday: [8, 9, 10] } }",
          "scaling: { type: load, up: { cpu: 80 }, down: { cpu: 20 } }",
        ),
      ),
    ),
    (error: Error & { code: string }) => {
      assert.equal(error.code, "STACK_INVALID");
      assert.match(
        error.message,
        /:14: .*load thresholds moved to the instance's layers: layers\[\]\.load_based/,
      );
      return true;
    },
  );
});
