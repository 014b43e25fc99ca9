import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { isBuiltin, resolveBuiltin } from "./builtin.ts";

test("built-in recipes resolve inside this install's src/, and nothing else does", () => {
  assert.ok(isBuiltin("galley:lifecycle/recipes/packages.ts"));
  const file = resolveBuiltin("galley:lifecycle/recipes/packages.ts");
  assert.ok(
    file.endsWith(`${path.sep}src${path.sep}lifecycle${path.sep}recipes${path.sep}packages.ts`),
    file,
  );
  assert.equal(resolveBuiltin("web::default"), "web::default");
  for (const bad of ["galley:../../etc/passwd.ts", "galley:/etc/x.ts", "galley:", "galley:core/x.json"])
    assert.throws(() => resolveBuiltin(bad), { code: "USAGE" });
});
