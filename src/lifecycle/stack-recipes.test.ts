import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import type { GalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import { openStack } from "./context.ts";

const example = fileURLToPath(new URL("../../examples/webapp", import.meta.url));

// the webapp example's stack and cookbooks in a fresh folder, with its db layer's configure recipes replaced
async function stackWith(configure: string): Promise<string> {
  const dir = await tempDir("galley-stack-recipes-");
  await fs.cp(path.join(example, "cookbooks"), path.join(dir, "cookbooks"), { recursive: true });
  const text = await fs.readFile(path.join(example, "stacks/webapp.yaml"), "utf8");
  const file = path.join(dir, "stacks/webapp.yaml");
  await fs.mkdir(path.dirname(file));
  await fs.writeFile(file, text.replace("configure: [db::configure]", `configure: [${configure}]`));
  // its encrypted secrets.yaml, and the demo's key as the kitchen's own (what make-app-repo.sh does)
  await fs.cp(path.join(example, "stacks/secrets.yaml"), path.join(dir, "stacks/secrets.yaml"));
  await fs.mkdir(path.join(dir, ".galley"));
  await fs.copyFile(path.join(example, "secret.example.key"), path.join(dir, ".galley/secret.key"));
  await fs.chmod(path.join(dir, ".galley/secret.key"), 0o600);
  return file;
}

test("a stack naming a recipe of an unknown cookbook, or an unknown recipe, is STACK_INVALID naming the layer, event and line", async () => {
  for (const [configure, said] of [
    [
      "db::configure, nope::setup",
      /:\d+: layer db, configure: recipe nope::setup names no cookbook of the kitchen \(app, db, lb\)$/,
    ],
    ["db::confgure", /:\d+: layer db, configure: recipe db::confgure names no recipe of cookbook db/],
  ] as const) {
    const file = await stackWith(configure);
    await assert.rejects(
      openStack(file),
      (e: GalleyError) => e.code === "STACK_INVALID" && e.message.startsWith(file) && said.test(e.message),
    );
  }
  const context = await openStack(await stackWith("db::configure"));
  await context.store.close();
  // stopping a stack and reading its history do not need its recipes
  const stopping = await openStack(await stackWith("nope::setup"), { checkRecipes: false });
  await stopping.store.close();
});
