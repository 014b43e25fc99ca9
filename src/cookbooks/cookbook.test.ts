import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { loadCookbook, recipeFile } from "./cookbook.ts";

test("recipeFile: a recipe name that could leave the cookbook's recipes/ is RECIPE_NOT_FOUND", async () => {
  const root = await tempDir();
  const dir = path.join(root, "cookbooks", "web");
  await fs.mkdir(path.join(dir, "recipes"), { recursive: true });
  await fs.writeFile(path.join(dir, "cookbook.yaml"), "name: web\nversion: 1.0.0\n");
  await fs.writeFile(path.join(dir, "recipes", "default.ts"), "export default () => {};\n");
  // a recipe file outside the cookbook that a `web::../../../evil` would have reached
  await fs.writeFile(path.join(root, "evil.ts"), "export default () => {};\n");
  const web = (await loadCookbook(dir))!;
  assert.equal(await recipeFile(web, "default"), path.join(dir, "recipes", "default.ts"));
  for (const name of ["../../../evil", "../../../evil\0", "..", ".hidden", "a/b", "a\\b"]) {
    await assert.rejects(recipeFile(web, name), (error: Error & { code?: string }) => {
      assert.equal(error.code, "RECIPE_NOT_FOUND", name);
      assert.match(error.message, /is not a recipe name/);
      return true;
    });
  }
});
