import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { cloneStack } from "./clone.ts";
import { loadStack } from "./stack.ts";

const stackYaml = `# production, as we run it
name: production
layers:
  - name: web # the front
instances:
  - { name: web1, layers: [web] }
  - name: old
    layers: [web]
    provider: { type: ssh, address: 10.0.0.9 }
  - { name: web2, layers: [web] }
`;

test("cloneStack: a new file with the new name and prefixed instances, ssh ones left out, comments kept", async () => {
  const dir = await tempDir("galley-clone-");
  const from = path.join(dir, "production.yaml");
  await fs.writeFile(from, stackYaml);
  const result = await cloneStack({ from, to: path.join(dir, "staging.yaml") });
  assert.deepEqual(result, {
    from,
    to: path.join(dir, "staging.yaml"),
    name: "staging",
    instances: { web1: "staging-web1", web2: "staging-web2" },
    leftOut: ["old (10.0.0.9)"],
  });
  const text = await fs.readFile(result.to, "utf8");
  assert.match(text, /^# production, as we run it\nname: staging\n/);
  assert.match(text, /# the front/);
  const clone = await loadStack(result.to);
  assert.deepEqual(
    clone.instances.map((i) => i.name),
    ["staging-web1", "staging-web2"],
  );
  assert.deepEqual((await fs.readdir(dir)).sort(), ["production.yaml", "staging.yaml"], "no temp file left");
});

test("cloneStack: refuses an existing file, the same name and a bad name, writing nothing", async () => {
  const dir = await tempDir("galley-clone-");
  const from = path.join(dir, "production.yaml");
  await fs.writeFile(from, stackYaml);
  await fs.writeFile(path.join(dir, "taken.yaml"), "mine\n");
  const refused = (pattern: RegExp) => (e: { code: string; message: string }) =>
    e.code === "ARGS_INVALID" && pattern.test(e.message);
  await assert.rejects(cloneStack({ from, to: path.join(dir, "taken.yaml") }), refused(/exists already/));
  assert.equal(await fs.readFile(path.join(dir, "taken.yaml"), "utf8"), "mine\n");
  await assert.rejects(
    cloneStack({ from, to: path.join(dir, "x.yaml"), name: "production" }),
    refused(/other than production/),
  );
  await assert.rejects(
    cloneStack({ from, to: path.join(dir, "Bad_Name.yaml") }),
    refused(/is not a stack name/),
  );
  assert.deepEqual((await fs.readdir(dir)).sort(), ["production.yaml", "taken.yaml"]);
});
