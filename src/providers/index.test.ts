import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import { byProvider, reach } from "../lifecycle/providers.ts";
import type { StackContext } from "../lifecycle/context.ts";
import { tempDir } from "../resources/testing.ts";
import type { Instance } from "../stacks/schema.ts";
import { loadStack } from "../stacks/stack.ts";
import { instanceProvider, instanceProviders } from "./index.ts";

const stackText = (provider: string) => `name: production
layers:
  - name: app
instances:
  - name: app1
    layers: [app]
    provider: ${provider}
`;

test("providers: each registry key is its provider's own type in the stack file", () => {
  for (const [name, provider] of Object.entries(instanceProviders)) {
    const parsed = v.safeParse(provider.schema, { type: name, ...(name === "ssh" ? { address: "a" } : {}) });
    assert.ok(parsed.success, `${name}: its schema accepts type: ${name}`);
    assert.equal(instanceProvider(name), provider);
  }
  assert.equal(instanceProvider("ec2"), undefined);
  assert.equal(instanceProvider("toString"), undefined, "only the registry's own keys");
});

test("providers: an unknown provider in a stack file is STACK_INVALID at its line, listing the registry", async () => {
  const file = path.join(await tempDir(), "production.yaml");
  await fs.writeFile(file, stackText("{ type: ec2, region: home }"));
  const error = await loadStack(file).then(
    () => assert.fail("an unknown provider loads"),
    (e: unknown) => e,
  );
  assert.ok(error instanceof GalleyError);
  assert.equal(error.code, "STACK_INVALID");
  assert.match(error.message, new RegExp(`${file}:7`));
  for (const name of Object.keys(instanceProviders)) assert.match(error.message, new RegExp(`"${name}"`));
});

test("providers: every registered provider's settings load from a stack file", async () => {
  const file = path.join(await tempDir(), "production.yaml");
  await fs.writeFile(file, stackText("{ type: ssh, address: 10.0.0.5, key: keys/id, port: 2222 }"));
  const stack = await loadStack(file);
  assert.deepEqual(stack.instances[0]!.provider, {
    type: "ssh",
    address: "10.0.0.5",
    key: "keys/id",
    port: 2222,
  });
});

test("providers: instances go to their registry entry, grouped; an unregistered type is a coded error", () => {
  const instance = (name: string, provider: Instance["provider"]) =>
    ({ name, layers: ["app"], provider }) as Instance;
  const groups = byProvider([
    instance("a", { type: "ssh", address: "10.0.0.1" }),
    instance("b", { type: "container" }),
    instance("c", { type: "ssh", address: "10.0.0.2" }),
  ]);
  assert.deepEqual(
    groups.map(([provider, group]) => [provider, group.map((i) => i.name)]),
    [
      [instanceProviders.ssh, ["a", "c"]],
      [instanceProviders.container, ["b"]],
    ],
  );
  assert.throws(
    () => byProvider([instance("d", { type: "ec2" } as unknown as Instance["provider"])]),
    (error: unknown) =>
      error instanceof GalleyError &&
      error.code === "STACK_INVALID" &&
      /instance d: no instance provider "ec2"/.test(error.message) &&
      error.hint === `the instance providers are: ${Object.keys(instanceProviders).join(", ")}`,
  );
});

test("providers: ssh reaches an existing machine with paths relative to the stack file", async () => {
  const dir = await tempDir();
  const context = { file: path.join(dir, "stacks", "production.yaml"), kitchen: dir } as StackContext;
  const reached = await reach(context, [
    {
      name: "app1",
      layers: ["app"],
      provider: { type: "ssh", address: "10.0.0.5", key: "keys/id", user: "admin" },
    },
  ] as Instance[]);
  const result = reached.get("app1");
  assert.ok(result?.ok);
  assert.equal(result.address, "10.0.0.5");
  assert.equal(result.target.keyFile, path.join(dir, "stacks", "keys", "id"));
  assert.equal(result.target.user, "admin");
  assert.equal(result.target.become, true, "a user other than root becomes root");
});
