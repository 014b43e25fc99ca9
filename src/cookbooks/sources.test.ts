import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { cookbookRepo, writeSources } from "../../test/support/git-repos.ts";
import { tempDir } from "../resources/testing.ts";
import { cacheDir, gitCandidates, gitSession } from "./git.ts";
import { originOf } from "./resolve.ts";
import { type GitSource, loadSources, type Sources, sourcesDigest } from "./sources.ts";

async function kitchen(yaml: string): Promise<string> {
  return writeSources(await tempDir("galley-t-kitchen-"), yaml);
}

async function sourcesOf(yaml: string): Promise<Sources> {
  return (await loadSources(await kitchen(yaml)))!;
}

/** The GalleyError a promise rejects with, for asserting its code, message and hint. */
async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; hint: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; hint: string };
  }
  assert.fail("expected an error");
}

test("sources: path and git entries parse in file order, with each entry's line", async () => {
  const sources = await sourcesOf(
    [
      "# the kitchen's cookbooks",
      "cookbooks:",
      "  web: { path: ./site-cookbooks/web }",
      "  base: { git: https://git.example.com/base.git, tag: v1.1.0 }",
      "  tools:",
      "    git: /srv/git/cookbooks.git",
      "    branch: main",
      "    subdir: tools/",
      '    version: "~2.3"',
      "",
    ].join("\n"),
  );
  assert.deepEqual(
    [...sources.cookbooks],
    [
      ["web", { path: "./site-cookbooks/web" }],
      ["base", { git: "https://git.example.com/base.git", tag: "v1.1.0" }],
      ["tools", { git: "/srv/git/cookbooks.git", branch: "main", subdir: "tools", version: "~2.3" }],
    ],
  );
  assert.deepEqual(
    [...sources.lines],
    [
      ["web", 3],
      ["base", 4],
      ["tools", 5],
    ],
  );
  assert.equal(path.basename(sources.file), "cookbooks.yaml");
});

test("sources: no cookbooks.yaml is undefined; an empty list is fine", async () => {
  assert.equal(await loadSources(await tempDir()), undefined);
  assert.equal((await sourcesOf("cookbooks:\n")).cookbooks.size, 0);
});

test("sources: errors name cookbooks.yaml:line and the field", async () => {
  const cases: [string, RegExp][] = [
    [
      "cookbooks:\n  web: { path: ./w, git: /x.git }\n",
      /cookbooks\.yaml:2: cookbooks\.web: give exactly one of path/,
    ],
    ["cookbooks:\n  web: {}\n", /cookbooks\.yaml:2: cookbooks\.web: give exactly one of path/],
    [
      "cookbooks:\n  base:\n    git: /x.git\n    tag: v1\n    branch: main\n",
      /cookbooks\.yaml:3: cookbooks\.base: give at most one of tag, branch or ref/,
    ],
    [
      "cookbooks:\n  web: { path: ./w, tag: v1 }\n",
      /cookbooks\.web: tag, branch, ref and subdir belong to git/,
    ],
    [
      "cookbooks:\n  web:\n    path: ./w\n    colour: red\n",
      /cookbooks\.yaml:4: cookbooks\.web: unknown field "colour"/,
    ],
    [
      "cookbooks:\n  base:\n    git: /x.git\n    version: banana\n",
      /cookbooks\.yaml:4: cookbooks\.base\.version: a version constraint/,
    ],
    [
      "cookbooks:\n  base: { git: /x.git, subdir: ../up }\n",
      /cookbooks\.base\.subdir: a folder inside the repository/,
    ],
    [
      "cookbooks:\n  base: { git: /x.git, ref: --upload-pack=evil }\n",
      /cookbooks\.base\.ref: must not start with -/,
    ],
    ["cookbooks:\n  Base: { path: ./b }\n", /cookbooks\.Base: a cookbook name/],
    ["cookbooks:\n  web: { path: [\n", /cookbooks\.yaml:\d+: /],
  ];
  for (const [yaml, expected] of cases) {
    const error = await failure(sourcesOf(yaml));
    assert.equal(error.code, "SOURCE_INVALID", yaml);
    assert.match(error.message, expected, yaml);
    assert.ok(error.hint, yaml);
  }
});

test("sources: the digest ignores comments, layout and order, not content", async () => {
  const a = await sourcesOf("cookbooks:\n  a: { path: ./a }\n  b: { git: /b.git, tag: v1 }\n");
  const b = await sourcesOf(
    "# comment\ncookbooks:\n  b:\n    tag: v1\n    git: /b.git\n  a:\n    path: ./a\n",
  );
  const c = await sourcesOf("cookbooks:\n  a: { path: ./a }\n  b: { git: /b.git, tag: v2 }\n");
  assert.equal(a.sha256, b.sha256);
  assert.notEqual(a.sha256, c.sha256);
  assert.equal(a.sha256, sourcesDigest(a.cookbooks));
});

test("cache dir: GALLEY_CACHE_DIR, else XDG_CACHE_HOME/galley, else ~/.cache/galley", () => {
  assert.equal(cacheDir({ GALLEY_CACHE_DIR: "/c", XDG_CACHE_HOME: "/x" }), "/c");
  assert.equal(cacheDir({ XDG_CACHE_HOME: "/x" }), "/x/galley");
  assert.match(cacheDir({}), /\.cache\/galley$/);
});

async function candidates(yaml: string, name: string) {
  const sources = await sourcesOf(yaml);
  const session = gitSession(await tempDir("galley-t-cache-"));
  return gitCandidates(session, originOf(sources, name));
}

test("git: without tag/branch/ref, the candidates are the version tags (v1.2.0 and 1.2.0, lightweight or annotated)", async () => {
  const repo = await cookbookRepo();
  const c1 = repo.release({ name: "base", version: "1.0.0" });
  const c2 = repo.release({ name: "base", version: "1.1.0", tag: "1.1.0", annotated: true });
  const c3 = repo.release({ name: "base", version: "2.0.0", depends: { util: "^1" } });
  repo.release({ name: "base", version: "2.1.0-dev", tag: "release-candidate" });
  const list = await candidates(`cookbooks:\n  base: { git: ${repo.url} }\n`, "base");
  assert.deepEqual(list.map((c) => [c.version, c.commit, c.label, c.depends]).sort(), [
    ["1.0.0", c1, "tag v1.0.0", {}],
    ["1.1.0", c2, "tag 1.1.0", {}],
    ["2.0.0", c3, "tag v2.0.0", { util: "^1" }],
  ]);
});

test("git: tag, branch, ref and subdir each name one commit; the cookbook is read at it", async () => {
  const repo = await cookbookRepo();
  const first = repo.release({ name: "tools", version: "2.3.0", subdir: "tools" });
  repo.release({ name: "db", version: "0.1.0", subdir: "db" });
  const head = repo.release({ name: "tools", version: "2.4.0", subdir: "tools", tag: false });
  const session = gitSession(await tempDir("galley-t-cache-"));
  const pick = async (name: string, source: Omit<GitSource, "git">) => {
    const origin = { name, source: { git: repo.url, ...source }, url: repo.url, where: "cookbooks.yaml:2" };
    const [candidate, ...rest] = await gitCandidates(session, origin);
    assert.equal(rest.length, 0);
    return [candidate!.version, candidate!.commit, candidate!.label];
  };
  assert.deepEqual(await pick("tools", { tag: "v2.3.0", subdir: "tools" }), ["2.3.0", first, "tag v2.3.0"]);
  assert.deepEqual(await pick("tools", { branch: "main", subdir: "tools" }), ["2.4.0", head, "branch main"]);
  const ref = first.slice(0, 10);
  assert.deepEqual(await pick("tools", { ref, subdir: "tools" }), ["2.3.0", first, `ref ${ref}`]);
  assert.deepEqual(await pick("db", { branch: "main", subdir: "db" }), ["0.1.0", head, "branch main"]);
});

test("git: unknown tag, branch or ref, missing subdir, unreachable repository: SOURCE_INVALID naming them", async () => {
  const repo = await cookbookRepo();
  repo.release({ name: "base", version: "1.0.0", subdir: "base" });
  const cases: [string, RegExp, RegExp][] = [
    [
      `tag: v9.9.9, subdir: base`,
      /:2: cookbook base: tag v9\.9\.9 does not exist in .*cookbooks\.git/,
      /tags there: v1\.0\.0/,
    ],
    [`branch: nope, subdir: base`, /branch nope does not exist/, /branches there: main/],
    [`ref: 0123456789abcdef, subdir: base`, /ref 0123456789abcdef does not exist/, /git ls-remote/],
    [
      `tag: v1.0.0, subdir: tools`,
      /subdir tools does not exist at tag v1\.0\.0 of /,
      /folders at the top of that repository: base/,
    ],
    [`tag: v1.0.0`, /has no cookbook\.yaml at tag v1\.0\.0/, /subdir:/],
  ];
  for (const [fields, message, hint] of cases) {
    const error = await failure(candidates(`cookbooks:\n  base: { git: ${repo.url}, ${fields} }\n`, "base"));
    assert.equal(error.code, "SOURCE_INVALID", fields);
    assert.match(error.message, message, fields);
    assert.match(error.hint, hint, fields);
  }
  const missing = path.join(await tempDir(), "nothing-here.git");
  const error = await failure(candidates(`cookbooks:\n  base: { git: ${missing} }\n`, "base"));
  assert.equal(error.code, "SOURCE_INVALID");
  assert.match(error.message, /cookbook base: cannot fetch .*nothing-here\.git: /);
  assert.match(error.hint, /git ls-remote/);
});

test("git: the cookbook's name must be the entry's; a version tag must agree with cookbook.yaml", async () => {
  const repo = await cookbookRepo();
  repo.release({ name: "other", version: "1.0.0" });
  let error = await failure(candidates(`cookbooks:\n  base: { git: ${repo.url} }\n`, "base"));
  assert.equal(error.code, "SOURCE_INVALID");
  assert.match(error.message, /cookbooks\.yaml names it base, but .* \(tag v1\.0\.0\) holds cookbook other/);

  const liar = await cookbookRepo();
  liar.release({ name: "base", version: "1.2.5", tag: "v1.3.0" });
  error = await failure(candidates(`cookbooks:\n  base: { git: ${liar.url} }\n`, "base"));
  assert.match(error.message, /tag v1\.3\.0 of .* holds version 1\.2\.5 in its cookbook\.yaml/);

  const untagged = await cookbookRepo();
  untagged.release({ name: "base", version: "1.0.0", tag: false });
  error = await failure(candidates(`cookbooks:\n  base: { git: ${untagged.url} }\n`, "base"));
  assert.match(error.message, /has no version tags/);
  assert.match(error.hint, /tag:, branch: or ref:/);
});

test("git: a broken cookbook.yaml in the repository is named by URL and tag", async () => {
  const repo = await cookbookRepo();
  repo.release({ name: "base", version: "1.0.0", files: { "cookbook.yaml": "name: base\nversion: one\n" } });
  const error = await failure(candidates(`cookbooks:\n  base: { git: ${repo.url}, tag: v1.0.0 }\n`, "base"));
  assert.equal(error.code, "SOURCE_INVALID");
  assert.match(
    error.message,
    /cookbooks\.git \(tag v1\.0\.0\): cookbook\.yaml:2: version: a semantic version/,
  );
  assert.doesNotMatch(error.message, /galley-metadata-/);
});

test("git: the mirror is cloned once and fetched again later (a new tag shows up)", async () => {
  const repo = await cookbookRepo();
  repo.release({ name: "base", version: "1.0.0" });
  const cache = await tempDir("galley-t-cache-");
  const yaml = `cookbooks:\n  base: { git: ${repo.url} }\n`;
  const sources = await sourcesOf(yaml);
  const lines: string[] = [];
  const first = await gitCandidates(
    gitSession(cache, (l) => lines.push(l)),
    originOf(sources, "base"),
  );
  assert.deepEqual(
    first.map((c) => c.version),
    ["1.0.0"],
  );
  assert.equal((await fs.readdir(path.join(cache, "git"))).filter((f) => f.endsWith(".git")).length, 1);
  repo.release({ name: "base", version: "1.1.0" });
  const second = await gitCandidates(
    gitSession(cache, (l) => lines.push(l)),
    originOf(sources, "base"),
  );
  assert.deepEqual(second.map((c) => c.version).sort(), ["1.0.0", "1.1.0"]);
  assert.deepEqual(lines, [`fetching base from ${repo.url}`, `fetching base from ${repo.url}`]);
});
