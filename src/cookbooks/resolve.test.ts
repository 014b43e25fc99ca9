import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { cookbookRepo, writeCookbookSync, writeSources } from "../../test/support/git-repos.ts";
import { tempDir } from "../resources/testing.ts";
import { gitSession } from "./git.ts";
import { type Candidate, type Problem, resolveKitchen, solve } from "./resolve.ts";
import { loadSources } from "./sources.ts";
import { sortVersions } from "./versions.ts";

type Index = Record<string, Record<string, Record<string, string>>>;

/** A problem from `{ name: { version: depends } }`, candidates highest first. */
function problem(index: Index, constraints: Record<string, string> = {}): Problem {
  const candidates = new Map<string, Candidate[]>();
  for (const [name, versions] of Object.entries(index)) {
    const list = sortVersions(Object.keys(versions))
      .reverse()
      .map((version) => ({ name, version, depends: versions[version]!, source: { path: `./${name}` } }));
    candidates.set(name, list);
  }
  return { file: "cookbooks.yaml", candidates, constraints: new Map(Object.entries(constraints)) };
}

function versions(chosen: Map<string, Candidate>): Record<string, string> {
  return Object.fromEntries([...chosen].map(([name, c]) => [name, c.version]).sort());
}

function failure(run: () => unknown): { code: string; message: string; hint: string } {
  try {
    run();
  } catch (error) {
    return error as { code: string; message: string; hint: string };
  }
  assert.fail("expected an error");
}

test("solve: the highest version satisfying every constraint (cookbooks.yaml's and every dependent's)", () => {
  const index: Index = {
    web: { "1.0.0": { base: "^1.1" } },
    app: { "1.0.0": { base: "<1.3" } },
    base: { "1.0.0": {}, "1.1.0": {}, "1.2.0": {}, "1.3.0": {}, "2.0.0": {} },
  };
  assert.deepEqual(versions(solve(problem(index))), { app: "1.0.0", base: "1.2.0", web: "1.0.0" });
  assert.deepEqual(versions(solve(problem(index, { base: "~1.1" }))), {
    app: "1.0.0",
    base: "1.1.0",
    web: "1.0.0",
  });
});

test("solve: backtracks when the highest version's depends make another cookbook impossible", () => {
  // app 2.0.0 wants base ^2, which web forbids: app 1.x it is, and base 1.5.0
  const index: Index = {
    app: { "2.0.0": { base: "^2" }, "1.9.0": { base: "^1.4" }, "1.0.0": { base: "^1.0" } },
    web: { "1.0.0": { base: "<2" } },
    base: { "1.4.0": {}, "1.5.0": {}, "2.1.0": {} },
  };
  assert.deepEqual(versions(solve(problem(index))), { app: "1.9.0", base: "1.5.0", web: "1.0.0" });
});

test("solve: backtracking through a chain (a choice two levels up is what has to change)", () => {
  const index: Index = {
    top: { "2.0.0": { mid: "^2" }, "1.0.0": { mid: "^1" } },
    mid: { "2.0.0": { leaf: "^2" }, "1.0.0": { leaf: "^1" } },
    leaf: { "1.0.0": {}, "2.0.0": {} },
  };
  assert.deepEqual(versions(solve(problem(index, { leaf: "<2" }))), {
    leaf: "1.0.0",
    mid: "1.0.0",
    top: "1.0.0",
  });
});

test("solve: circular depends are fine when satisfiable", () => {
  const index: Index = {
    a: { "1.0.0": { b: "^1" }, "2.0.0": { b: "^2" } },
    b: { "1.0.0": { a: "^1" }, "2.0.0": { a: "^1" } },
  };
  assert.deepEqual(versions(solve(problem(index))), { a: "1.0.0", b: "1.0.0" });
});

test("solve: a conflict prints every constraint on the cookbook with its chain, and the versions there are", () => {
  const index: Index = {
    app: { "2.0.0": { base: "~1.1" } },
    web: { "1.0.0": { mid: "*" } },
    mid: { "1.0.0": { base: "^1.2" } },
    base: { "1.1.0": {}, "1.2.0": {} },
  };
  const error = failure(() => solve(problem(index)));
  assert.equal(error.code, "DEPENDENCY_CONFLICT");
  assert.equal(
    error.message,
    [
      "cookbooks.yaml: no version of base satisfies every constraint on it:",
      "  cookbooks.yaml → app 2.0.0 requires base ~1.1",
      "  cookbooks.yaml → web 1.0.0 → mid 1.0.0 requires base ^1.2",
      "  versions of base available: 1.1.0, 1.2.0",
    ].join("\n"),
  );
  assert.match(error.hint, /relax one of these constraints/);
  const pinned = failure(() => solve(problem({ base: { "1.0.0": {} } }, { base: "^2" })));
  assert.match(
    pinned.message,
    /cookbooks\.yaml requires base \^2 \(its version:\)\n {2}versions of base available: 1\.0\.0/,
  );
});

test("solve: a dependency cookbooks.yaml does not name is COOKBOOK_NOT_FOUND with what to add", () => {
  const error = failure(() => solve(problem({ web: { "1.0.0": { base: "^1.2" } } })));
  assert.equal(error.code, "COOKBOOK_NOT_FOUND");
  assert.equal(
    error.message,
    "cookbooks.yaml: web 1.0.0 depends on base ^1.2, which cookbooks.yaml does not name",
  );
  assert.match(error.hint, /base: \{ git: URL \} or base: \{ path: \.\/DIR \}/);
});

test("resolveKitchen: git tags and a path cookbook, keeping locked versions until updated", async () => {
  const repo = await cookbookRepo();
  const c10 = repo.release({ name: "base", version: "1.0.0" });
  const c11 = repo.release({ name: "base", version: "1.1.0" });
  repo.release({ name: "base", version: "2.0.0" });
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "site", "web"), {
    name: "web",
    version: "0.1.0",
    depends: { base: "^1.0" },
  });
  await writeSources(root, `cookbooks:\n  web: { path: ./site/web }\n  base: { git: ${repo.url} }\n`);
  const sources = (await loadSources(root))!;
  const session = gitSession(await tempDir("galley-t-cache-"));
  const lock = await resolveKitchen({ sources, session });
  assert.deepEqual(Object.keys(lock.cookbooks), ["base", "web"]);
  assert.equal(lock.cookbooks.base!.version, "1.1.0");
  assert.equal(lock.cookbooks.base!.commit, c11);
  assert.deepEqual(lock.cookbooks.web!.source, { path: "./site/web" });

  // a new 1.x: install keeps 1.1.0, update takes 1.2.0
  repo.release({ name: "base", version: "1.2.0" });
  const fresh = gitSession(session.cache);
  assert.equal((await resolveKitchen({ sources, session: fresh, lock })).cookbooks.base!.version, "1.1.0");
  assert.equal(fresh.mirrors.size, 0, "a locked cookbook in the cache needs no fetch");
  const updated = await resolveKitchen({ sources, session: fresh, lock, unlock: new Set(["base"]) });
  assert.equal(updated.cookbooks.base!.version, "1.2.0");

  // a locked version that no longer fits moves, and only as far as needed
  writeCookbookSync(path.join(root, "site", "web"), {
    name: "web",
    version: "0.2.0",
    depends: { base: "~1.0.0" },
  });
  const moved = await resolveKitchen({ sources, session: gitSession(session.cache), lock });
  assert.equal(moved.cookbooks.base!.version, "1.0.0");
  assert.equal(moved.cookbooks.base!.commit, c10);
});

test("resolveKitchen: a path source must hold the cookbook cookbooks.yaml names", async () => {
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "w"), { name: "website", version: "1.0.0" });
  await writeSources(root, "cookbooks:\n  web: { path: ./w }\n  db: { path: ./nowhere }\n");
  const session = gitSession(await tempDir("galley-t-cache-"));
  const sources = (await loadSources(root))!;
  let error = await resolveKitchen({ sources, session }).catch((e) => e);
  assert.equal(error.code, "SOURCE_INVALID");
  assert.match(
    error.message,
    /cookbooks\.yaml:2: cookbooks\.yaml names it web, but .*w\/cookbook\.yaml says name: website/,
  );
  writeCookbookSync(path.join(root, "w"), { name: "web", version: "1.0.0" });
  error = await resolveKitchen({ sources, session }).catch((e) => e);
  assert.match(error.message, /cookbooks\.yaml:3: cookbook db: .*nowhere\/cookbook\.yaml does not exist/);
});
