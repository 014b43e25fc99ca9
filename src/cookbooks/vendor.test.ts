import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { cookbookRepo, writeCookbookSync, writeSources } from "../../test/support/git-repos.ts";
import { tempDir } from "../resources/testing.ts";
import { gitSession } from "./git.ts";
import { kitchenCookbooks, requireSources } from "./kitchen.ts";
import { lockFileName, readLock, writeLock } from "./lock.ts";
import { outdatedCookbooks } from "./outdated.ts";
import { resolveKitchen } from "./resolve.ts";
import { vendorCookbooks } from "./vendor.ts";

// The domain functions behind `galley cookbooks vendor` and `outdated`, called as an HTTP API would.

/** A locked kitchen: web (a path cookbook) depends on base (a git repository tagged 1.0.0 and 2.0.0). */
async function lockedKitchen() {
  const cache = await tempDir("galley-t-cache-");
  const base = await cookbookRepo();
  base.release({ name: "base", version: "1.0.0" });
  base.release({ name: "base", version: "2.0.0" });
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "site-cookbooks", "web"), {
    name: "web",
    version: "0.1.0",
    depends: { base: "^1.0" },
  });
  await writeSources(
    root,
    `cookbooks:\n  web: { path: ./site-cookbooks/web }\n  base: { git: ${base.url} }\n`,
  );
  const sources = await requireSources(root);
  const lock = await resolveKitchen({ sources, session: gitSession(cache), lock: undefined });
  await writeLock(path.join(root, lockFileName), lock);
  // vendoring reads the kitchen's cookbooks from Galley's cache, as the CLI does
  process.env.GALLEY_CACHE_DIR = cache;
  return { root, base, cache };
}

test("vendorCookbooks: returns what it wrote; the folder holds the locked cookbooks and verifies against its lock", async () => {
  const { root } = await lockedKitchen();
  const out = path.join(await tempDir("galley-t-vendor-"), "vendored");
  const result = await vendorCookbooks(root, out);
  assert.deepEqual(result, {
    dir: out,
    cookbooks: [
      { name: "base", version: "1.0.0" },
      { name: "web", version: "0.1.0" },
    ].sort((a, b) => a.name.localeCompare(b.name)),
  });
  assert.deepEqual((await fs.readdir(out)).sort(), ["base", "base.origin.json", "cookbooks.lock", "web"]);
  const shipped = await kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out });
  assert.deepEqual(shipped.lock, await readLock(path.join(root, lockFileName)));
  // again: the earlier vendor folder is replaced whole, nothing left beside it
  await fs.writeFile(path.join(out, "stray"), "x");
  await vendorCookbooks(root, out);
  assert.ok(!(await fs.readdir(out)).includes("stray"));
  assert.deepEqual(await fs.readdir(path.dirname(out)), ["vendored"]);
  // a folder with other content is refused, and left as it was
  const other = await tempDir("galley-t-vendor-");
  await fs.writeFile(path.join(other, "mine"), "keep");
  await assert.rejects(
    vendorCookbooks(root, other),
    (e: { code: string; message: string }) =>
      e.code === "USAGE" && /is not empty and is not a vendor folder/.test(e.message),
  );
  assert.deepEqual(await fs.readdir(other), ["mine"]);
});

test("outdatedCookbooks: data for each cookbook whose source moved on; none when up to date", async () => {
  const { root, base, cache } = await lockedKitchen();
  const lines: string[] = [];
  const before = await outdatedCookbooks(root, { cache, log: (line) => lines.push(line) });
  assert.deepEqual(before, [
    {
      name: "base",
      version: "1.0.0",
      newer: ["2.0.0"],
      heldBy: ["web 0.1.0 requires ^1.0"],
    },
  ]);
  assert.ok(
    lines.some((line) => /fetching base/.test(line)),
    "progress goes to the caller's log",
  );
  base.release({ name: "base", version: "1.1.0" });
  await fs.appendFile(path.join(root, "site-cookbooks", "web", "recipes", "default.ts"), "// edited\n");
  const after = await outdatedCookbooks(root, { cache });
  assert.deepEqual(
    after.map((r) => [r.name, r.newer, r.allowed, r.changed]),
    [
      ["web", [], undefined, true],
      ["base", ["1.1.0", "2.0.0"], "1.1.0", undefined],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
  );
  await fs.rm(path.join(root, lockFileName));
  await assert.rejects(outdatedCookbooks(root, { cache }), { code: "LOCK_INVALID" });
});
