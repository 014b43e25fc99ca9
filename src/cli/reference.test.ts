import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { test } from "node:test";
import { resourcesReference } from "./reference.ts";

test("docs/resources.md is generated from the current schemas (run `npm run docs` after changing a type)", async () => {
  const onDisk = await fs.readFile(new URL("../../docs/resources.md", import.meta.url), "utf8");
  assert.equal(onDisk, resourcesReference());
});
