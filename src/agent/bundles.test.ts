import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { BundleCache } from "./bundles.ts";

test("the bundle cache keeps only bytes matching their id and fetches a cached bundle never again", async () => {
  const dir = await tempDir();
  const cache = new BundleCache(dir);
  const data = Buffer.from("a bundle's bytes");
  const id = createHash("sha256").update(data).digest("hex");
  let fetches = 0;
  const fetch = async () => {
    fetches += 1;
    return data;
  };
  assert.deepEqual(await cache.ensure(id, fetch), { file: cache.file(id), fetched: data.length });
  assert.deepEqual(await cache.ensure(id, fetch), { file: cache.file(id), fetched: 0 });
  assert.equal(fetches, 1);
  assert.deepEqual(await fs.readFile(cache.file(id)), data);
  const other = "0".repeat(64);
  await assert.rejects(cache.ensure(other, fetch), (error: Error & { code?: string }) => {
    assert.equal(error.code, "BUNDLE_INVALID");
    assert.match(error.message, new RegExp(`has the id ${id}`));
    return true;
  });
  await assert.rejects(fs.stat(cache.file(other)), { code: "ENOENT" });
  await assert.rejects(cache.ensure("../etc", fetch), { code: "BUNDLE_INVALID" });
});
