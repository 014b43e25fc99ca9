import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { instanceTransport } from "./schema.ts";
import { loadStack } from "./stack.ts";

test("transport: an instance's own, else its first layer's that sets one, else ssh; anything else is refused", async () => {
  const dir = await tempDir("galley-t-transport-");
  const file = path.join(dir, "stack.yaml");
  await fs.writeFile(
    file,
    `name: prod
cookbooks: .
layers:
  - { name: lb }
  - { name: app, transport: agent }
instances:
  - { name: lb1, layers: [lb] }
  - { name: web1, layers: [lb, app] }
  - { name: web2, layers: [app], transport: ssh }
  - { name: web3, layers: [lb], transport: agent }
`,
  );
  const stack = await loadStack(file);
  assert.deepEqual(
    stack.instances.map((instance) => instanceTransport(stack, instance)),
    ["ssh", "agent", "ssh", "agent"],
  );
  await fs.writeFile(
    file,
    "name: prod\ncookbooks: .\nlayers: [{ name: app }]\ninstances: [{ name: w, layers: [app], transport: carrier-pigeon }]\n",
  );
  await assert.rejects(loadStack(file), /STACK_INVALID|ssh or agent/);
});
