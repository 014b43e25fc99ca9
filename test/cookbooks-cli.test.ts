import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { type ParseArgsOptionsConfig, parseArgs } from "node:util";
import { cookbooksCommand } from "../src/cli/cookbooks.ts";
import { kitchenCookbooks } from "../src/cookbooks/kitchen.ts";
import type { Lockfile } from "../src/cookbooks/lock.ts";
import { tempDir } from "../src/resources/testing.ts";
import { cookbookRepo, writeCookbookSync, writeSources } from "./support/git-repos.ts";

/** Runs `galley cookbooks ARGS…` in-process (parsed like main does), capturing stdout and stderr. */
async function galley(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { values, positionals } = parseArgs({
    args,
    options: cookbooksCommand.options as ParseArgsOptionsConfig,
    allowPositionals: true,
    strict: true,
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const [out, err] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((chunk: string) => stdout.push(String(chunk)) > 0) as typeof out;
  process.stderr.write = ((chunk: string) => stderr.push(String(chunk)) > 0) as typeof err;
  try {
    const code = await cookbooksCommand.run(values as never, positionals);
    return { code, stdout: stdout.join(""), stderr: stderr.join("") };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string; hint: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; hint: string };
  }
  assert.fail("expected an error");
}

async function readLockJson(root: string): Promise<Lockfile> {
  return JSON.parse(await fs.readFile(path.join(root, "cookbooks.lock"), "utf8")) as Lockfile;
}

/**
 * A kitchen like the issue's: web (a path cookbook) depends on base (a git repository with version
 * tags), and tools and db live in subdirs of one repository, tools followed on a branch.
 */
async function kitchen() {
  process.env.GALLEY_CACHE_DIR = await tempDir("galley-t-cache-");
  const base = await cookbookRepo();
  base.release({ name: "base", version: "1.0.0" });
  base.release({ name: "base", version: "1.1.0" });
  base.release({ name: "base", version: "2.0.0" });
  const mono = await cookbookRepo();
  mono.release({ name: "db", version: "0.3.0", subdir: "db" });
  const tools = mono.release({
    name: "tools",
    version: "2.3.0",
    subdir: "tools",
    depends: { base: ">=1.0" },
  });
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "site-cookbooks", "web"), {
    name: "web",
    version: "0.1.0",
    depends: { base: "^1.0", tools: "~2.3" },
  });
  await writeSources(
    root,
    [
      "cookbooks:",
      "  web: { path: ./site-cookbooks/web }",
      `  base: { git: ${base.url} }`,
      `  tools: { git: ${mono.url}, branch: main, subdir: tools, version: "~2.3" }`,
      `  db: { git: ${mono.url}, tag: v0.3.0, subdir: db }`,
      "",
    ].join("\n"),
  );
  return { root, base, mono, tools };
}

test("cookbooks install: resolves, fetches and writes the lock; prints what it locked", async () => {
  const { root, base, mono, tools } = await kitchen();
  const result = await galley("install", "--kitchen", root);
  assert.equal(result.code, 0);
  assert.match(result.stdout, /^locked 4 cookbooks in .*cookbooks\.lock\n/);
  assert.match(
    result.stdout,
    /\n {2}base {13}1\.1\.0 {6}git .*cookbooks\.git @[0-9a-f]{7} {2}sha256:[0-9a-f]{12} {2}\(new\)\n/,
  );
  assert.match(result.stdout, /\n {2}web {14}0\.1\.0 {6}path \.\/site-cookbooks\/web {2}sha256:/);
  assert.match(result.stderr, new RegExp(`fetching base from ${base.url}\n`));
  assert.match(result.stderr, new RegExp(`fetching tools from ${mono.url}\n`));
  const lock = await readLockJson(root);
  assert.deepEqual(
    Object.entries(lock.cookbooks).map(([name, e]) => [name, e.version]),
    [
      ["base", "1.1.0"],
      ["db", "0.3.0"],
      ["tools", "2.3.0"],
      ["web", "0.1.0"],
    ],
  );
  assert.equal(lock.cookbooks.tools!.commit, tools);
  assert.deepEqual(lock.cookbooks.tools!.source, {
    git: mono.url,
    branch: "main",
    subdir: "tools",
    version: "~2.3",
  });
  const { cookbooks } = await kitchenCookbooks({ root });
  assert.deepEqual([...cookbooks.keys()], ["base", "db", "tools", "web"]);

  const again = await galley("install", "--kitchen", root, "--json");
  const report = JSON.parse(again.stdout);
  assert.equal(report.status, "ok");
  assert.equal(report.written, false);
  assert.equal(again.stderr, "");
  assert.deepEqual(report.cookbooks[0].previous, {
    version: "1.1.0",
    commit: lock.cookbooks.base!.commit,
    sha256: lock.cookbooks.base!.sha256,
  });

  // a changed path cookbook: install re-locks it and says so
  await fs.appendFile(path.join(root, "site-cookbooks", "web", "recipes", "default.ts"), "// more\n");
  const relocked = await galley("install", "--kitchen", root);
  assert.match(relocked.stdout, /\n {2}web .*\(content changed\)\n/);
  assert.equal(relocked.stderr, "", "nothing to fetch: every git cookbook is locked and cached");
});

test("cookbooks list: name, version, source, short commit and digest prefix", async () => {
  const { root } = await kitchen();
  await galley("install", "--kitchen", root);
  const lock = await readLockJson(root);
  const base = lock.cookbooks.base! as { source: { git: string }; commit: string; sha256: string };
  const { stdout } = await galley("list", "--kitchen", root);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, 4);
  assert.equal(
    lines[0],
    `base             1.1.0      git ${base.source.git} @${base.commit.slice(0, 7)}  sha256:${base.sha256.slice(0, 12)}`,
  );
  const json = JSON.parse((await galley("list", "--kitchen", root, "--json")).stdout);
  assert.deepEqual(
    json.cookbooks.map((c: { name: string }) => c.name),
    ["base", "db", "tools", "web"],
  );
});

test("cookbooks update and outdated: a new tag and a moved branch", async () => {
  const { root, base, mono } = await kitchen();
  await galley("install", "--kitchen", root);
  assert.match(
    (await galley("outdated", "--kitchen", root)).stdout,
    /^base {13}1\.1\.0 {6}newer: 2\.0\.0 \(2\.0\.0 held back: web 0\.1\.0 requires \^1\.0\)\n$/,
  );

  base.release({ name: "base", version: "1.2.0" });
  const moved = mono.release({ name: "tools", version: "2.3.1", subdir: "tools", tag: false });
  const outdated = await galley("outdated", "--kitchen", root);
  assert.equal(outdated.code, 0);
  const before = await readLockJson(root);
  assert.match(
    outdated.stdout,
    /^base +1\.1\.0 +newer: 1\.2\.0, 2\.0\.0 \(update can take 1\.2\.0; 2\.0\.0 held back: web 0\.1\.0 requires \^1\.0\); galley cookbooks update base$/m,
  );
  assert.match(
    outdated.stdout,
    new RegExp(
      `^tools +2\\.3\\.0 +branch main moved: ${before.cookbooks.tools!.commit!.slice(0, 7)} → ${moved.slice(0, 7)}; galley cookbooks update tools$`,
      "m",
    ),
  );
  const json = JSON.parse((await galley("outdated", "--kitchen", root, "--json")).stdout);
  assert.deepEqual(
    json.cookbooks.map((c: { name: string; allowed?: string }) => [c.name, c.allowed]),
    [
      ["base", "1.2.0"],
      ["tools", undefined],
    ],
  );

  // install keeps what is locked; update NAME moves only NAME; update moves everything
  await galley("install", "--kitchen", root);
  assert.deepEqual(await readLockJson(root), before);
  const one = await galley("update", "base", "--kitchen", root);
  assert.match(one.stdout, /base +1\.2\.0 .*\(was 1\.1\.0\)/);
  let lock = await readLockJson(root);
  assert.equal(lock.cookbooks.base!.version, "1.2.0");
  assert.equal(lock.cookbooks.tools!.commit, before.cookbooks.tools!.commit);
  const all = await galley("update", "--kitchen", root);
  assert.match(all.stdout, /tools +2\.3\.1 .*\(was 2\.3\.0\)/);
  lock = await readLockJson(root);
  assert.equal(lock.cookbooks.tools!.commit, moved);
  assert.equal(lock.cookbooks.tools!.version, "2.3.1");
  assert.equal(
    (await galley("outdated", "--kitchen", root)).stdout,
    `base             1.2.0      newer: 2.0.0 (2.0.0 held back: web 0.1.0 requires ^1.0)\n`,
  );

  const unknown = await failure(galley("update", "nope", "--kitchen", root));
  assert.equal(unknown.code, "COOKBOOK_NOT_FOUND");
  assert.match(unknown.hint, /cookbooks there: web, base, tools, db/);
});

test("cookbooks install: a conflict shows both chains and writes nothing", async () => {
  process.env.GALLEY_CACHE_DIR = await tempDir("galley-t-cache-");
  const base = await cookbookRepo();
  base.release({ name: "base", version: "1.1.0" });
  base.release({ name: "base", version: "1.2.0" });
  const app = await cookbookRepo();
  app.release({ name: "app", version: "2.0.0", depends: { base: "~1.1" } });
  const root = await tempDir("galley-t-kitchen-");
  writeCookbookSync(path.join(root, "web"), { name: "web", version: "1.0.0", depends: { base: "^1.2" } });
  await writeSources(
    root,
    `cookbooks:\n  app: { git: ${app.url} }\n  web: { path: ./web }\n  base: { git: ${base.url} }\n`,
  );
  const error = await failure(galley("install", "--kitchen", root));
  assert.equal(error.code, "DEPENDENCY_CONFLICT");
  assert.match(error.message, /no version of base satisfies every constraint on it:\n/);
  assert.match(error.message, /\n {2}cookbooks\.yaml → app 2\.0\.0 requires base ~1\.1\n/);
  assert.match(error.message, /\n {2}cookbooks\.yaml → web 1\.0\.0 requires base \^1\.2\n/);
  assert.match(error.message, /\n {2}versions of base available: 1\.1\.0, 1\.2\.0$/);
  await assert.rejects(fs.access(path.join(root, "cookbooks.lock")));

  // a dependency cookbooks.yaml does not name
  await writeSources(root, `cookbooks:\n  web: { path: ./web }\n`);
  const missing = await failure(galley("install", "--kitchen", root));
  assert.equal(missing.code, "COOKBOOK_NOT_FOUND");
  assert.match(missing.message, /web 1\.0\.0 depends on base \^1\.2, which cookbooks\.yaml does not name/);
  await assert.rejects(fs.access(path.join(root, "cookbooks.lock")));
});

test("cookbooks install: an unknown tag or an unreachable repository is SOURCE_INVALID naming cookbooks.yaml:line", async () => {
  const { root, base } = await kitchen();
  const yaml = await fs.readFile(path.join(root, "cookbooks.yaml"), "utf8");
  await writeSources(root, yaml.replace(`{ git: ${base.url} }`, `{ git: ${base.url}, tag: v7.0.0 }`));
  let error = await failure(galley("install", "--kitchen", root));
  assert.equal(error.code, "SOURCE_INVALID");
  assert.match(error.message, /cookbooks\.yaml:3: cookbook base: tag v7\.0\.0 does not exist in /);
  await writeSources(root, yaml.replace(base.url, path.join(root, "gone.git")));
  error = await failure(galley("install", "--kitchen", root));
  assert.match(error.message, /cookbooks\.yaml:3: cookbook base: cannot fetch .*gone\.git/);
  await fs.rm(path.join(root, "cookbooks.yaml"));
  error = await failure(galley("install", "--kitchen", root));
  assert.equal(error.code, "SOURCE_INVALID");
  assert.match(error.message, /no cookbooks\.yaml in /);
});

test("cookbooks vendor: the locked cookbooks and the lock, verified; a vendored folder is what runs use", async () => {
  const { root, base } = await kitchen();
  await galley("install", "--kitchen", root);
  const lock = await readLockJson(root);
  const out = path.join(await tempDir(), "vendored");
  const result = await galley("vendor", out, "--kitchen", root);
  assert.match(result.stdout, /^vendored 4 cookbooks into /);
  // each git cookbook with the record of the commit it was exported from (web is a path cookbook)
  assert.deepEqual((await fs.readdir(out)).sort(), [
    "base",
    "base.origin.json",
    "cookbooks.lock",
    "db",
    "db.origin.json",
    "tools",
    "tools.origin.json",
    "web",
  ]);
  assert.deepEqual(JSON.parse(await fs.readFile(path.join(out, "cookbooks.lock"), "utf8")), lock);
  // a vendored folder on its own (no cookbooks.yaml beside it) is verified against its lock
  const shipped = await kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out });
  assert.deepEqual(shipped.lock, lock);
  assert.equal(shipped.cookbooks.get("web")!.dir, path.join(out, "web"));
  // vendoring again replaces it
  await galley("vendor", out, "--kitchen", root);
  await fs.appendFile(path.join(out, "db", "cookbook.yaml"), "# edited\n");
  const error = await failure(kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(error.message, /the vendored copy of db 0\.3\.0 in .*vendored\/db was modified/);
  assert.match(error.hint, /galley cookbooks vendor/);
  await galley("vendor", out, "--kitchen", root);
  await kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out });
  // the kitchen's own run over its vendored ./cookbooks
  await galley("vendor", path.join(root, "cookbooks"), "--kitchen", root);
  assert.deepEqual((await kitchenCookbooks({ root, cookbooksDir: "cookbooks" })).lock, lock);
  // …which must hold what the kitchen's lock pins
  base.release({ name: "base", version: "1.2.0" });
  await galley("update", "base", "--kitchen", root);
  const stale = await failure(kitchenCookbooks({ root, cookbooksDir: "cookbooks" }));
  assert.equal(stale.code, "LOCK_INVALID");
  assert.match(stale.message, /the vendored folder .*cookbooks holds other versions than .*cookbooks\.lock/);
});

test("cookbooks vendor: refuses a non-empty folder that is not a vendor folder, and a folder holding a path source", async () => {
  const { root } = await kitchen();
  await galley("install", "--kitchen", root);
  const busy = await tempDir();
  await fs.writeFile(path.join(busy, "precious.txt"), "keep me\n");
  let error = await failure(galley("vendor", busy, "--kitchen", root));
  assert.equal(error.code, "USAGE");
  assert.match(error.message, /is not empty and is not a vendor folder/);
  assert.equal(await fs.readFile(path.join(busy, "precious.txt"), "utf8"), "keep me\n");
  error = await failure(galley("vendor", path.join(root, "site-cookbooks"), "--kitchen", root));
  assert.match(error.message, /holds or is inside cookbook web \(its path: source\)/);
  error = await failure(
    galley("vendor", path.join(root, "site-cookbooks", "web", "vendor"), "--kitchen", root),
  );
  assert.match(error.message, /holds or is inside cookbook web/);
});

test("cookbooks: usage errors", async () => {
  assert.equal((await failure(galley())).code, "USAGE");
  assert.match((await failure(galley("frobnicate"))).message, /unknown subcommand "frobnicate"/);
  assert.match((await failure(galley("install", "extra"))).hint, /galley cookbooks update NAME/);
  assert.match((await failure(galley("vendor"))).message, /takes one folder/);
  const error = await failure(galley("list", "--kitchen", await tempDir()));
  assert.equal(error.code, "LOCK_INVALID");
});

test("cookbooks vendor: a vendored lock whose commit was edited, or a copy with no record of its commit, is LOCK_INVALID", async () => {
  const { root, mono } = await kitchen();
  await galley("install", "--kitchen", root);
  const out = path.join(await tempDir(), "vendored");
  await galley("vendor", out, "--kitchen", root);
  const lock = await fs.readFile(path.join(out, "cookbooks.lock"), "utf8");
  const locked = JSON.parse(lock).cookbooks.db.commit as string;
  // another commit of the same repository (the one tools is locked at), with db's content unchanged
  const other = mono.release({ name: "db", version: "0.3.0", subdir: "db", tag: false });
  await fs.writeFile(path.join(out, "cookbooks.lock"), lock.replace(locked, other));
  let error = await failure(kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out }));
  assert.equal(error.code, "LOCK_INVALID");
  assert.match(
    error.message,
    new RegExp(
      `the vendored copy of db 0\\.3\\.0 in .* was exported from commit ${locked.slice(0, 12)}, not from the locked commit ${other} \\(subdir db\\)`,
    ),
  );
  assert.match(error.hint, /galley cookbooks vendor/);
  await fs.writeFile(path.join(out, "cookbooks.lock"), lock);
  await kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out });
  await fs.rm(path.join(out, "db.origin.json"));
  error = await failure(kitchenCookbooks({ root: path.dirname(out), cookbooksDir: out }));
  assert.match(error.message, /the vendored copy of db 0\.3\.0 .* does not record the commit it came from/);
});
