import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { Header } from "tar/header";
import { Parser } from "tar/parse";
import { tempDir } from "../resources/testing.ts";
import { type BundleInput, bundleId, createBundle, openBundle } from "./bundle.ts";
import { loadCookbooks } from "./cookbook.ts";
import { cookbookDigest, digestOf } from "./digest.ts";

const run = promisify(execFile);
const isRoot = process.getuid?.() === 0;

type Spec = { path: string; content?: string; mode?: number; link?: string };

/** A small cookbook: metadata, a recipe, a template, an executable file and a symlink. */
function cookbookSpec(name: string, version: string): Spec[] {
  return [
    { path: "cookbook.yaml", content: `name: ${name}\nversion: ${version}\n` },
    { path: "recipes/default.ts", content: `export default (r) => r.file("/etc/${name}.conf");\n` },
    { path: "templates/motd.eta", content: "Welcome to <%= it.host %>\n" },
    { path: "templates/current.eta", link: "motd.eta" },
    { path: "files/setup.sh", content: "#!/bin/sh\necho setup\n", mode: 0o755 },
    // too long for a ustar header, and not ASCII: both travel in a pax record
    { path: `files/${"deep/".repeat(60)}leaf.txt`, content: "deep\n" },
    { path: "files/café.txt", content: "crème\n" },
  ];
}

async function writeSpec(dir: string, specs: Spec[], options: { fileMode?: number; execMode?: number } = {}) {
  for (const spec of specs) {
    const full = path.join(dir, spec.path);
    await fs.mkdir(path.dirname(full), { recursive: true });
    if (spec.link !== undefined) await fs.symlink(spec.link, full);
    else {
      await fs.writeFile(full, spec.content ?? "");
      const executable = spec.mode === 0o755;
      await fs.chmod(full, executable ? (options.execMode ?? 0o755) : (options.fileMode ?? 0o644));
    }
  }
}

/** The kitchen's two cookbooks in `root`, and the bundle input locking their current content. */
async function kitchen(
  root: string,
  options: { reverse?: boolean; fileMode?: number; execMode?: number } = {},
) {
  const books = [
    { name: "web", version: "1.2.0" },
    { name: "base", version: "2.0.1" },
  ];
  for (const book of books) {
    const specs = cookbookSpec(book.name, book.version);
    await writeSpec(path.join(root, book.name), options.reverse ? specs.reverse() : specs, options);
  }
  return lockedInput(books.map((b) => ({ ...b, dir: path.join(root, b.name) })));
}

async function lockedInput(books: { name: string; version: string; dir: string }[]): Promise<BundleInput> {
  const cookbooks = [];
  for (const book of books) cookbooks.push({ ...book, sha256: await cookbookDigest(book.dir) });
  return {
    cookbooks,
    lock: lockText(cookbooks),
    runLists: { web: ["base", "web::default"], base: ["base"] },
  };
}

/** A lock in the shape src/cookbooks/lock.ts writes. */
function lockText(cookbooks: { name: string; version: string; sha256: string }[]): string {
  const entries = [...cookbooks]
    .sort((a, b) => (a.name < b.name ? -1 : 1))
    .map((c) => [
      c.name,
      { version: c.version, source: { path: `./${c.name}` }, sha256: c.sha256, depends: {} },
    ]);
  const lock = { lockfileVersion: 1, sourcesSha256: "0".repeat(64), cookbooks: Object.fromEntries(entries) };
  return `${JSON.stringify(lock, null, 2)}\n`;
}

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp) {
  await assert.rejects(promise, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

interface Listed {
  path: string;
  type: string;
  mode: number | undefined;
  uid: number | undefined;
  gid: number | undefined;
  uname: string | undefined;
  gname: string | undefined;
  mtime: number | undefined;
  linkpath: string | undefined;
}

async function listArchive(archive: Buffer): Promise<Listed[]> {
  const listed: Listed[] = [];
  const parser = new Parser({
    onReadEntry: (entry) => {
      const { path, type, mode, uid, gid, uname, gname, linkpath } = entry;
      listed.push({ path, type, mode, uid, gid, uname, gname, linkpath, mtime: entry.mtime?.getTime() });
      entry.resume();
    },
  });
  await new Promise((resolve, reject) => {
    parser.on("end", resolve);
    parser.on("error", reject);
    parser.end(archive);
  });
  return listed;
}

test("createBundle: the same cookbooks give the same bytes wherever they are, whoever owns them", async () => {
  const first = await tempDir();
  const second = await tempDir();
  const original = await kitchen(first);
  const a = await createBundle(original, { dir: path.join(first, "out") });
  // the second copy: written in reverse order, other modes, other times, another owner
  const input = await kitchen(second, { reverse: true, fileMode: 0o600, execMode: 0o700 });
  for (const book of input.cookbooks) {
    for (const rel of ["cookbook.yaml", "recipes/default.ts", "files/setup.sh", "templates"]) {
      const full = path.join(book.dir, rel);
      await fs.utimes(full, new Date("2001-02-03T04:05:06Z"), new Date("2001-02-03T04:05:06Z"));
      if (isRoot) await fs.lchown(full, 4242, 4343);
    }
    if (isRoot) await fs.lchown(path.join(book.dir, "templates/current.eta"), 4242, 4343);
  }
  const b = await createBundle(input, { dir: path.join(second, "out") });
  assert.equal(a.id, b.id);
  assert.match(a.id, /^[0-9a-f]{64}$/);
  assert.equal(path.basename(a.file), `${a.id}.tgz`);
  assert.deepEqual(await fs.readFile(a.file), await fs.readFile(b.file));
  assert.equal((await fs.stat(a.file)).size, a.bytes);
  assert.equal(await bundleId(a.file), a.id);
  // made again later from the first folders: still the same
  const again = await createBundle(original, { file: path.join(first, "x.tgz") });
  assert.equal(again.id, a.id);
});

test("createBundle: sorted entries, no folders, no owners or times, normalized modes, fixed gzip header", async () => {
  const root = await tempDir();
  const input = await kitchen(root, { fileMode: 0o664, execMode: 0o775 });
  const bundle = await createBundle(input, { dir: root });
  const bytes = await fs.readFile(bundle.file);
  assert.deepEqual([...bytes.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
  const listed = await listArchive(bytes);
  const files = (name: string) =>
    [
      "cookbook.yaml",
      "files/café.txt",
      `files/${"deep/".repeat(60)}leaf.txt`,
      "files/setup.sh",
      "recipes/default.ts",
      "templates/current.eta",
      "templates/motd.eta",
    ].map((f) => `cookbooks/${name}/${f}`);
  assert.deepEqual(
    listed.map((e) => e.path),
    ["bundle.json", "cookbooks.lock", ...files("base"), ...files("web")],
  );
  for (const entry of listed) {
    assert.deepEqual(
      [entry.uid, entry.gid, entry.uname, entry.gname, entry.mtime],
      [0, 0, "", "", 0],
      entry.path,
    );
    const expected = entry.path.endsWith(".sh") ? 0o755 : entry.path.endsWith("current.eta") ? 0o777 : 0o644;
    assert.equal(entry.mode, expected, entry.path);
    assert.equal(entry.type, entry.path.endsWith("current.eta") ? "SymbolicLink" : "File", entry.path);
  }
  assert.equal(listed.find((e) => e.type === "SymbolicLink")?.linkpath, "motd.eta");
  // the pax records carry paths only: no times, no owners
  const tar = gunzipSync(bytes).toString("latin1");
  assert.ok(tar.includes(` path=cookbooks/web/files/${"deep/".repeat(60)}leaf.txt\n`), "a pax path record");
  assert.ok(!/time=|uid=|uname=/.test(tar), "no times or owners in pax records");
  // GNU tar reads it too, and what it extracts has the locked digests
  const out = await tempDir();
  await run("tar", ["-xzf", bundle.file, "-C", out]);
  for (const book of input.cookbooks) {
    assert.equal(await cookbookDigest(path.join(out, "cookbooks", book.name)), book.sha256);
  }
  assert.equal(await fs.readFile(path.join(out, "cookbooks.lock"), "utf8"), input.lock);
  assert.deepEqual(JSON.parse(await fs.readFile(path.join(out, "bundle.json"), "utf8")), {
    format: 1,
    cookbooks: [...input.cookbooks]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map(({ name, version, sha256 }) => ({ name, version, sha256 })),
    runLists: { base: ["base"], web: ["base", "web::default"] },
  });
});

test("createBundle: a changed byte gives another id; --out FILE writes exactly there", async () => {
  const root = await tempDir();
  const original = await kitchen(root);
  const before = await createBundle(original, { dir: path.join(root, "out") });
  await fs.appendFile(path.join(root, "web", "templates", "motd.eta"), "!");
  const input = await lockedInput(
    original.cookbooks.map(({ name, version, dir }) => ({ name, version, dir })),
  );
  const file = path.join(root, "releases", "site.tgz");
  const after = await createBundle(input, { file });
  assert.notEqual(after.id, before.id);
  assert.equal(after.file, file);
  assert.equal(await bundleId(file), after.id);
});

test("createBundle: a cookbook changed since it was locked is LOCK_INVALID and nothing is written", async () => {
  const root = await tempDir();
  const input = await kitchen(root);
  await fs.writeFile(path.join(root, "web", "recipes", "default.ts"), "export default () => {};\n");
  const out = path.join(root, "out");
  await rejectsWith(
    createBundle(input, { dir: out }),
    "LOCK_INVALID",
    /stale: cookbook web .*changed since it was locked/,
  );
  await assert.rejects(fs.readdir(out), { code: "ENOENT" });
  // an input that disagrees with the lock text is refused the same way
  const other = await kitchen(await tempDir());
  await rejectsWith(
    createBundle({ ...other, lock: lockText(other.cookbooks.slice(0, 1)) }, { dir: out }),
    "LOCK_INVALID",
    /not match cookbooks\.lock: cookbooks\.lock does not pin cookbook/,
  );
});

test("createBundle: a symlink leaving the cookbook is refused", async () => {
  const root = await tempDir();
  await writeSpec(path.join(root, "web"), [
    ...cookbookSpec("web", "1.0.0"),
    { path: "files/passwd", link: "../../../etc/passwd" },
  ]);
  const input = await lockedInput([{ name: "web", version: "1.0.0", dir: path.join(root, "web") }]);
  await rejectsWith(
    createBundle(input, { dir: root }),
    "BUNDLE_INVALID",
    /files\/passwd is a symlink .*outside/,
  );
});

test("openBundle: verifies and extracts with modes and symlinks, whatever the umask", async () => {
  const root = await tempDir();
  const input = await kitchen(root);
  const bundle = await createBundle(input, { dir: path.join(root, "out") });
  const cache = path.join(root, "cache");
  const umask = process.umask(0o077);
  const opened = await openBundle(bundle.file, cache).finally(() => process.umask(umask));
  assert.equal(opened.id, bundle.id);
  assert.equal(opened.dir, path.join(cache, "bundles", bundle.id));
  assert.equal(opened.cookbooksDir, path.join(opened.dir, "cookbooks"));
  assert.equal(opened.lock, input.lock);
  assert.deepEqual(opened.manifest.runLists, { base: ["base"], web: ["base", "web::default"] });
  const cookbooks = await loadCookbooks(opened.cookbooksDir);
  assert.deepEqual(
    [...cookbooks.values()].map((c) => `${c.name} ${c.version}`),
    ["base 2.0.1", "web 1.2.0"],
  );
  const web = path.join(opened.cookbooksDir, "web");
  const mode = async (rel: string) => (await fs.lstat(path.join(web, rel))).mode & 0o7777;
  assert.equal(await mode("files/setup.sh"), 0o755);
  assert.equal(await mode("recipes/default.ts"), 0o644);
  assert.equal(await mode("templates"), 0o755);
  assert.equal((await fs.stat(opened.dir)).mode & 0o7777, 0o755);
  assert.equal(await fs.readlink(path.join(web, "templates", "current.eta")), "motd.eta");
  for (const book of input.cookbooks) {
    assert.equal(await cookbookDigest(path.join(opened.cookbooksDir, book.name)), book.sha256);
  }
  assert.deepEqual(await fs.readdir(path.join(cache, "bundles")), [bundle.id]);
});

test("openBundle: reuses a verified extraction and replaces a modified one", async () => {
  const root = await tempDir();
  const bundle = await createBundle(await kitchen(root), { dir: root });
  const cache = path.join(root, "cache");
  const first = await openBundle(bundle.file, cache);
  const recipe = path.join(first.cookbooksDir, "web", "recipes", "default.ts");
  const inode = (await fs.stat(recipe)).ino;
  await openBundle(bundle.file, cache);
  assert.equal((await fs.stat(recipe)).ino, inode, "a verified extraction is reused");
  const original = await fs.readFile(recipe, "utf8");
  const drifts: [string, () => Promise<void>][] = [
    ["changed content", () => fs.writeFile(recipe, "export default () => {};\n")],
    ["a changed mode", () => fs.chmod(recipe, 0o600)],
    [
      "an extra cookbook",
      () => writeSpec(path.join(first.cookbooksDir, "evil"), cookbookSpec("evil", "6.6.6")),
    ],
    ["an ignored folder", () => fs.mkdir(path.join(first.cookbooksDir, "web", ".git"))],
    ["a removed file", () => fs.rm(path.join(first.cookbooksDir, "base", "files", "setup.sh"))],
  ];
  for (const [what, drift] of drifts) {
    await drift();
    const reopened = await openBundle(bundle.file, cache);
    assert.equal(await fs.readFile(recipe, "utf8"), original, what);
    assert.equal((await fs.stat(recipe)).mode & 0o777, 0o644, what);
    assert.deepEqual(await fs.readdir(reopened.cookbooksDir), ["base", "web"], what);
    assert.deepEqual(await fs.readdir(path.join(reopened.cookbooksDir, "web")), [
      "cookbook.yaml",
      "files",
      "recipes",
      "templates",
    ]);
    assert.deepEqual(await fs.readdir(path.join(cache, "bundles")), [bundle.id], `${what}: no leftovers`);
  }
});

test("openBundle: processes opening the same bundle at once all get a verified extraction", async () => {
  const root = await tempDir();
  const bundle = await createBundle(await kitchen(root), { dir: root });
  const cache = path.join(root, "cache");
  const openAll = () => Promise.all(Array.from({ length: 8 }, () => openBundle(bundle.file, cache)));
  assert.equal(new Set((await openAll()).map((o) => o.dir)).size, 1);
  const recipe = path.join(cache, "bundles", bundle.id, "cookbooks", "web", "recipes", "default.ts");
  await fs.writeFile(recipe, "export default () => {};\n");
  await openAll();
  assert.match(await fs.readFile(recipe, "utf8"), /web\.conf/);
  assert.deepEqual(await fs.readdir(path.join(cache, "bundles")), [bundle.id], "no leftovers");
});

test("openBundle: a tampered or renamed archive is BUNDLE_INVALID and nothing is extracted", async () => {
  const root = await tempDir();
  const bundle = await createBundle(await kitchen(root), { dir: path.join(root, "out") });
  const bytes = await fs.readFile(bundle.file);
  const flipped = Buffer.from(bytes);
  flipped[Math.floor(bytes.length / 2)]! ^= 0x01;
  const cache = path.join(root, "cache");
  const tampered = path.join(root, `${bundle.id}.tgz`);
  await fs.writeFile(tampered, flipped);
  await rejectsWith(openBundle(tampered, cache), "BUNDLE_INVALID", /content does not match its id/);
  const renamed = path.join(root, `${"0".repeat(64)}.tgz`);
  await fs.writeFile(renamed, bytes);
  await rejectsWith(openBundle(renamed, cache), "BUNDLE_INVALID", /content does not match its id/);
  const unnamed = path.join(root, "site.tgz");
  await fs.writeFile(unnamed, flipped);
  await rejectsWith(openBundle(unnamed, cache), "BUNDLE_INVALID", /not a gzipped tar|unreadable/);
  await assert.rejects(fs.readdir(cache), { code: "ENOENT" });
  await rejectsWith(openBundle(path.join(root, "missing.tgz"), cache), "FILE_NOT_FOUND", /does not exist/);
  await rejectsWith(bundleId(path.join(root, "missing.tgz")), "FILE_NOT_FOUND", /does not exist/);
});

type LockJson = { cookbooks: Record<string, Record<string, unknown>> } & Record<string, unknown>;

type Crafted = { path: string; type?: "File" | "SymbolicLink" | "Link" | "CharacterDevice" | "Directory" } & (
  | { data: string; mode?: number }
  | { linkpath: string }
);

/** A gzipped tar written entry by entry, exactly as given: what a hostile archive could hold. */
function craft(entries: Crafted[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const data = Buffer.from("data" in entry ? entry.data : "");
    const header = Buffer.alloc(512);
    new Header({
      path: entry.path,
      type: entry.type ?? ("data" in entry ? "File" : "SymbolicLink"),
      mode: "mode" in entry ? entry.mode : 0o644,
      size: data.length,
      linkpath: "linkpath" in entry ? entry.linkpath : "",
      uid: 0,
      gid: 0,
      mtime: new Date(0),
    }).encode(header);
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return gzipSync(Buffer.concat([...blocks, Buffer.alloc(1024)]));
}

/**
 * A hand-made, consistent bundle of one cookbook web, plus `extra` entries; `runLists` go in bundle.json
 * as given, and `lock` may rewrite the lock's JSON (what a re-packer could do).
 */
function craftedBundle(
  files: Record<string, string>,
  extra: Crafted[] = [],
  options: { runLists?: Record<string, string[]>; lock?: (lock: LockJson) => void } = {},
): Buffer {
  const sha = (s: string) => createHash("sha256").update(s).digest("hex");
  const names = Object.keys(files).sort();
  const sha256 = digestOf(names.map((p) => ({ path: p, kind: "file" as const, sha256: sha(files[p]!) })));
  const cookbooks = [{ name: "web", version: "1.0.0", sha256 }];
  const manifest = { format: 1, cookbooks, runLists: options.runLists ?? {} };
  const lock = JSON.parse(lockText(cookbooks)) as LockJson;
  options.lock?.(lock);
  return craft([
    { path: "bundle.json", data: JSON.stringify(manifest) },
    { path: "cookbooks.lock", data: JSON.stringify(lock) },
    ...names.map((p) => ({ path: `cookbooks/web/${p}`, data: files[p]! })),
    ...extra,
  ]);
}

async function namesUnder(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { recursive: true }).catch(() => [] as string[]);
  return entries.map((e) => path.basename(e));
}

test("openBundle: refuses entries that escape, links that leave, devices and hard links; writes nothing", async () => {
  const root = await tempDir();
  const outside = await tempDir();
  const web = {
    "cookbook.yaml": "name: web\nversion: 1.0.0\n",
    "recipes/default.ts": "export default () => {};\n",
  };
  const cache = path.join(root, "a", "b", "cache");
  const good = path.join(root, "good.tgz");
  await fs.writeFile(good, craftedBundle(web));
  assert.equal(
    (await openBundle(good, cache)).manifest.cookbooks[0]?.name,
    "web",
    "the hand-made bundle is sound",
  );
  await fs.rm(cache, { recursive: true });
  const hostile: [Crafted[], RegExp][] = [
    [[{ path: "cookbooks/web/../../../../../evil", data: "x" }], /could escape the bundle/],
    [[{ path: "../evil", data: "x" }], /could escape the bundle/],
    [[{ path: path.join(outside, "evil"), data: "x" }], /could escape the bundle/],
    [[{ path: "cookbooks/web/evil", linkpath: "../../../../.." }], /outside its cookbook/],
    [[{ path: "cookbooks/web/evil", linkpath: outside }], /outside its cookbook/],
    [
      [
        { path: "cookbooks/web/link", linkpath: "recipes" },
        { path: "cookbooks/web/link/evil", data: "x" },
      ],
      /lies inside cookbooks\/web\/link, which is not a folder/,
    ],
    [
      [
        { path: "cookbooks/web/dot", linkpath: "." },
        { path: "cookbooks/web/evil", linkpath: "dot/../.." },
      ],
      /outside its cookbook/,
    ],
    [[{ path: "cookbooks/web/evil", type: "Link", linkpath: "/etc/passwd" }], /Link entry/],
    [[{ path: "cookbooks/web/evil", type: "CharacterDevice", data: "" }], /CharacterDevice entry/],
    [[{ path: "cookbooks/web/evil", type: "Directory", data: "" }], /Directory entry/],
    [[{ path: "evil", data: "x" }], /not part of the bundle layout/],
    [[{ path: "cookbooks/evil/cookbook.yaml", data: "name: evil\n" }], /belongs to no cookbook/],
    [[{ path: "cookbooks/web/recipes/default.ts", data: "evil" }], /appears twice/],
    [[{ path: "cookbooks/web/evil", data: "x" }], /does not match the sha256/],
  ];
  for (const [extra, message] of hostile) {
    const file = path.join(root, "hostile.tgz");
    await fs.writeFile(file, craftedBundle(web, extra));
    await rejectsWith(openBundle(file, cache), "BUNDLE_INVALID", message);
    assert.deepEqual(await namesUnder(cache), [], `${extra[0]!.path}: nothing extracted`);
    assert.equal((await namesUnder(root)).includes("evil"), false, `${extra[0]!.path}: nothing outside`);
    assert.deepEqual(await namesUnder(outside), [], `${extra[0]!.path}: nothing outside`);
  }
});

test("openBundle: a bundle.json that disagrees with the lock or is malformed is BUNDLE_INVALID", async () => {
  const root = await tempDir();
  const cache = path.join(root, "cache");
  const lock = lockText([{ name: "web", version: "1.0.0", sha256: "a".repeat(64) }]);
  const cases: [string, string, RegExp][] = [
    [
      JSON.stringify({ format: 1, cookbooks: [], runLists: {} }),
      lock,
      /pins cookbook web, which is not in the bundle/,
    ],
    [
      JSON.stringify({
        format: 1,
        cookbooks: [{ name: "web", version: "1.0.0", sha256: "b".repeat(64) }],
        runLists: {},
      }),
      lock,
      /cookbook web 1\.0\.0 .* differs from cookbooks\.lock/,
    ],
    [JSON.stringify({ format: 2, cookbooks: [], runLists: {} }), lock, /not a format 1 manifest \(format/],
    ["{", lock, /bundle\.json is not JSON/],
  ];
  for (const [manifest, lockData, message] of cases) {
    const file = path.join(root, "b.tgz");
    await fs.writeFile(
      file,
      craft([
        { path: "bundle.json", data: manifest },
        { path: "cookbooks.lock", data: lockData },
      ]),
    );
    await rejectsWith(openBundle(file, cache), "BUNDLE_INVALID", message);
  }
});

test("openBundle: a run list naming anything but its own cookbooks' recipes is BUNDLE_INVALID; nothing extracted", async () => {
  const root = await tempDir();
  const outside = await tempDir();
  const evil = path.join(outside, "evil.ts");
  await fs.writeFile(
    evil,
    `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(path.join(outside, "ran"))}, "");\nexport default () => {};\n`,
  );
  const web = {
    "cookbook.yaml": "name: web\nversion: 1.0.0\n",
    "recipes/default.ts": "export default () => {};\n",
    "recipes/site.ts": "export default () => {};\n",
  };
  const cache = path.join(root, "cache");
  const good = path.join(root, "good.tgz");
  await fs.writeFile(good, craftedBundle(web, [], { runLists: { default: ["web", "web::site"] } }));
  assert.deepEqual((await openBundle(good, cache)).manifest.runLists, { default: ["web", "web::site"] });
  await fs.rm(cache, { recursive: true });
  const hostile: [string[], RegExp][] = [
    [[evil], /item ".*evil\.ts" is a path to a recipe file/],
    [["../evil.ts"], /item "\.\.\/evil\.ts" is a path to a recipe file/],
    [["./site.ts"], /is a path to a recipe file/],
    [["web::../../../evil"], /item "web::\.\.\/\.\.\/\.\.\/evil" is a path to a recipe file/],
    [["base::default"], /names cookbook base, which is not in the bundle \(it holds web\)/],
    [["web", "other"], /names cookbook other, which is not in the bundle/],
    [["web::missing"], /names a recipe the bundle does not hold \(cookbooks\/web\/recipes\/missing\.ts\)/],
    [["web::"], /is not a recipe name/],
    [["Web"], /is not a recipe name/],
  ];
  for (const [items, message] of hostile) {
    const file = path.join(root, "hostile.tgz");
    await fs.writeFile(file, craftedBundle(web, [], { runLists: { web: ["web"], default: items } }));
    await rejectsWith(openBundle(file, cache), "BUNDLE_INVALID", message);
    assert.deepEqual(await namesUnder(cache), [], `${items}: nothing extracted`);
  }
  const named = path.join(root, "named.tgz");
  await fs.writeFile(named, craftedBundle(web, [], { runLists: { "../x": ["web"] } }));
  await rejectsWith(
    openBundle(named, cache),
    "BUNDLE_INVALID",
    /run list "\.\.\/x" has a name that is not plain/,
  );
  await assert.rejects(fs.access(path.join(outside, "ran")), { code: "ENOENT" });
});

test("openBundle: a lock entry or cookbook.yaml that disagrees with what the bundle holds is BUNDLE_INVALID", async () => {
  const root = await tempDir();
  const cache = path.join(root, "cache");
  const web = {
    "cookbook.yaml": "name: web\nversion: 1.0.0\ndepends: [base]\n",
    "recipes/default.ts": "export default () => {};\n",
  };
  const entry = (lock: LockJson) => lock.cookbooks.web!;
  const cases: [Record<string, string>, (lock: LockJson) => void, RegExp][] = [
    [
      web,
      (lock) => {
        entry(lock).depends = { base: "*" };
      },
      /cookbook web depends on base, which is not in the bundle/,
    ],
    [
      { ...web, "cookbook.yaml": "name: web\nversion: 1.0.0\n" },
      (lock) => {
        delete entry(lock).version;
      },
      /version/,
    ],
    [
      { ...web, "cookbook.yaml": "name: web\nversion: 1.0.0\n" },
      (lock) => {
        entry(lock).commit = "evil";
      },
      /commit/,
    ],
    [
      { ...web, "cookbook.yaml": "name: web\nversion: 1.0.0\n" },
      (lock) => {
        entry(lock).source = { git: "https://example.invalid/web.git" };
      },
      /a git source's entry has its commit/,
    ],
    [
      { ...web, "cookbook.yaml": "name: web\nversion: 1.0.0\n" },
      (lock) => {
        entry(lock).depends = { base: "^1" };
      },
      /cookbooks\/web\/cookbook\.yaml depends on \[\], the lock records \[\["base","\^1"\]\]/,
    ],
    [
      { ...web, "cookbook.yaml": "name: base\nversion: 1.0.0\n" },
      () => {},
      /cookbooks\/web\/cookbook\.yaml says name: base/,
    ],
    [
      { ...web, "cookbook.yaml": "name: web\nversion: 6.6.6\n" },
      () => {},
      /cookbooks\/web\/cookbook\.yaml says version 6\.6\.6, bundle\.json and the lock 1\.0\.0/,
    ],
    [
      { ...web, "cookbook.yaml": "name: web\nversion: 1.0.0\n" },
      (lock) => {
        // the array form an older reading of the lock accepted
        (lock as Record<string, unknown>).cookbooks = [{ name: "web", ...lock.cookbooks.web }];
      },
      /cookbooks\.lock:\d+: cookbooks/,
    ],
    [
      { "recipes/default.ts": "export default () => {};\n" },
      () => {},
      /cookbook web has no cookbooks\/web\/cookbook\.yaml/,
    ],
  ];
  for (const [files, tamper, message] of cases) {
    const file = path.join(root, "tampered.tgz");
    await fs.writeFile(file, craftedBundle(files, [], { lock: tamper }));
    await rejectsWith(openBundle(file, cache), "BUNDLE_INVALID", message);
    assert.deepEqual(await namesUnder(cache), [], `${message}: nothing extracted`);
  }
});

test("createBundle: a run list of a recipe file, a path or a cookbook not bundled is refused; nothing written", async () => {
  const root = await tempDir();
  const input = await kitchen(root);
  const out = path.join(root, "out");
  for (const items of [["./site.ts"], ["/tmp/evil.ts"], ["web::../../evil"], ["other"], ["web::nope"]]) {
    await rejectsWith(
      createBundle({ ...input, runLists: { default: items } }, { dir: out }),
      "BUNDLE_INVALID",
      /cannot bundle this run list/,
    );
  }
  await assert.rejects(fs.readdir(out), { code: "ENOENT" });
});
