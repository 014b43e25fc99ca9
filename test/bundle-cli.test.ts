import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../src/resources/testing.ts";
import { editJson, editManifest, readTar, repack, type TarEntry } from "./support/bundles.ts";
import { cli } from "./support/cli.ts";
import { cookbookRepo } from "./support/git-repos.ts";

// `galley apply --bundle` runs only the bundle's own code, and with trust configured only signed bundles:
// each hostile bundle below is re-packed and named by its own sha256, as anyone could

/** A kitchen with one path cookbook web (recipes default and extra), locked and bundled as web.tgz. */
async function bundled() {
  const dir = await tempDir("galley-t-bundle-");
  const web = path.join(dir, "site", "web");
  await fs.mkdir(path.join(web, "recipes"), { recursive: true });
  await fs.writeFile(path.join(web, "cookbook.yaml"), "name: web\nversion: 1.0.0\n");
  const recipe = (name: string) =>
    `export default (r) => { r.file(\`\${r.attrs.web.root}/${name}.txt\`, { content: "${name}\\n" }); };\n`;
  await fs.writeFile(path.join(web, "recipes", "default.ts"), recipe("default"));
  await fs.writeFile(path.join(web, "recipes", "extra.ts"), recipe("extra"));
  await fs.writeFile(path.join(dir, "cookbooks.yaml"), "cookbooks:\n  web: { path: ./site/web }\n");
  // the host: its own folder, target and state, and a recipe file outside any bundle
  const host = path.join(dir, "host");
  const target = path.join(dir, "target");
  await fs.mkdir(host);
  await fs.mkdir(target);
  await fs.writeFile(path.join(host, "target.yaml"), `web: { root: ${JSON.stringify(target)} }\n`);
  const marker = path.join(dir, "evil-ran");
  const evil = path.join(dir, "evil.ts");
  await fs.writeFile(
    evil,
    `import { writeFileSync } from "node:fs";\nwriteFileSync(${JSON.stringify(marker)}, "");\nexport default () => {};\n`,
  );
  const env = { GALLEY_CACHE_DIR: await tempDir("galley-t-cache-"), GALLEY_BUNDLE_TRUST: "" };
  const run = (args: string[], cwd = dir, more: Record<string, string> = {}) =>
    cli(args, cwd, { ...env, ...more });
  assert.equal(run(["cookbooks", "install"]).code, 0);
  const made = run(["bundle", "web", "--out", "web.tgz", "--json"]);
  assert.equal(made.code, 0, made.stderr);
  const file = path.join(dir, "web.tgz");
  const apply = (bundle: string, more: string[] = [], extraEnv: Record<string, string> = {}) =>
    run(
      [
        "apply",
        "--bundle",
        bundle,
        "--attrs",
        "target.yaml",
        "--state-dir",
        path.join(dir, "state"),
        ...more,
      ],
      host,
      extraEnv,
    );
  return { dir, host, target, marker, evil, run, apply, file, entries: await readTar(file) };
}

function refused(result: { code: number | null; stderr: string }, code: string, message: RegExp) {
  assert.equal(result.code, 2, result.stderr);
  assert.match(result.stderr, new RegExp(`error\\[${code}\\]`));
  assert.match(result.stderr, message);
}

test("apply --bundle: a run list naming a file outside the bundle, a path or another cookbook is refused; nothing runs", async () => {
  const { dir, target, marker, evil, apply, file, entries } = await bundled();
  const ok = apply(file);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(await fs.readFile(path.join(target, "default.txt"), "utf8"), "default\n");
  await fs.rm(path.join(target, "default.txt"));
  const hostile: [string[], RegExp][] = [
    [[evil], /item ".*evil\.ts" is a path to a recipe file/],
    [["../evil.ts"], /item "\.\.\/evil\.ts" is a path to a recipe file/],
    [["web", "base::default"], /names cookbook base, which is not in the bundle \(it holds web\)/],
    [["web::../../../evil"], /is a path to a recipe file/],
  ];
  for (const [items, message] of hostile) {
    const repacked = await repack(
      dir,
      editManifest(entries, (m) => {
        m.runLists = { default: items };
      }),
    );
    const result = apply(repacked);
    refused(result, "BUNDLE_INVALID", message);
    assert.match(result.stderr, new RegExp(`bundle ${repacked}: bundle\\.json: run list default`));
    await assert.rejects(fs.access(marker), { code: "ENOENT" }, `${items}: evil.ts did not run`);
    assert.deepEqual(await fs.readdir(target), [], `${items}: nothing converged`);
  }
  // the run list given on the command line is held to the same rule
  for (const item of [evil, "../evil.ts", "other"]) {
    refused(apply(file, [item]), "ARGS_INVALID", /--bundle .*web\.tgz: run list item/);
    await assert.rejects(fs.access(marker), { code: "ENOENT" });
  }
  const other = apply(file, ["web::extra"]);
  assert.equal(other.code, 0, other.stderr);
  assert.deepEqual(await fs.readdir(target), ["extra.txt"]);
});

test("apply --bundle: a tampered lock entry, a file the digests do not cover and an escaping symlink are refused", async () => {
  const { dir, target, marker, evil, apply, entries } = await bundled();
  type Lock = { cookbooks: Record<string, Record<string, unknown>> };
  const lockEdits: [(lock: Lock) => void, RegExp][] = [
    [
      (lock) => {
        lock.cookbooks.web!.version = "6.6.6";
      },
      /differs from cookbooks\.lock, which pins version 6\.6\.6/,
    ],
    [
      (lock) => {
        delete lock.cookbooks.web!.version;
      },
      /cookbooks\.lock:\d+: cookbooks\.web/,
    ],
    [
      (lock) => {
        lock.cookbooks.web!.commit = "0".repeat(40);
      },
      /a git source's entry has its commit, a path/,
    ],
    [
      (lock) => {
        lock.cookbooks.web!.depends = { evil: "*" };
      },
      /depends on \[\], the lock records/,
    ],
  ];
  for (const [edit, message] of lockEdits) {
    refused(
      apply(await repack(dir, editJson<Lock>(entries, "cookbooks.lock", edit))),
      "BUNDLE_INVALID",
      message,
    );
  }
  const file = (p: string, data: string): TarEntry => ({
    path: p,
    type: "File",
    mode: 0o644,
    data: Buffer.from(data),
  });
  const link = (p: string, to: string): TarEntry => ({
    path: p,
    type: "SymbolicLink",
    mode: 0o777,
    data: Buffer.alloc(0),
    linkpath: to,
  });
  const extras: [TarEntry[], RegExp][] = [
    [
      [file("cookbooks/web/recipes/evil.ts", "export default () => {};\n")],
      /cookbook web does not match the sha256/,
    ],
    [
      [file("cookbooks/evil/cookbook.yaml", "name: evil\nversion: 1.0.0\n")],
      /belongs to no cookbook of bundle\.json/,
    ],
    [[file("evil.ts", "")], /not part of the bundle layout/],
    [[link("cookbooks/web/recipes/evil.ts", evil)], /is a symlink to .*evil\.ts, outside its cookbook/],
    [[link("cookbooks/web/recipes/evil.ts", "../../../../evil.ts")], /outside its cookbook/],
    [[{ ...link("cookbooks/web/recipes/evil.ts", evil), type: "Link" }], /is a Link entry/],
    [[file("cookbooks/web/recipes/default.ts", "evil")], /appears twice/],
  ];
  for (const [extra, message] of extras) {
    const repacked = await repack(
      dir,
      editManifest([...entries, ...extra], (m) => {
        m.runLists = { default: ["web::evil"] };
      }),
    );
    refused(apply(repacked), "BUNDLE_INVALID", message);
  }
  await assert.rejects(fs.access(marker), { code: "ENOENT" });
  assert.deepEqual(await fs.readdir(target), []);
});

test("signed bundles: keygen, sign, verify; with trust, unsigned, foreign-signed and changed-after-signing bundles are refused", async () => {
  const { dir, target, run, apply, file, entries } = await bundled();
  const keys = path.join(dir, "keys");
  const team = run(["bundle", "keygen", "--key-file", path.join(keys, "team.key"), "--json"]);
  assert.equal(team.code, 0, team.stderr);
  const teamId = JSON.parse(team.stdout).keyId as string;
  const foreign = JSON.parse(
    run(["bundle", "keygen", "--key-file", path.join(keys, "foreign.key"), "--json"]).stdout,
  );
  assert.equal((await fs.stat(path.join(keys, "team.key"))).mode & 0o777, 0o600);
  const trust = ["--trust", path.join(keys, "team.key.pub")];

  // signed when made: the signature beside it names the bundle and the key
  const made = run([
    "bundle",
    "web",
    "--out",
    "signed.tgz",
    "--sign-key",
    path.join(keys, "team.key"),
    "--json",
  ]);
  assert.equal(made.code, 0, made.stderr);
  const signed = path.join(dir, "signed.tgz");
  const signature = JSON.parse(await fs.readFile(`${signed}.sig`, "utf8"));
  assert.equal(signature.bundle, JSON.parse(made.stdout).id);
  assert.equal(signature.keyId, teamId);
  const verified = run(["bundle", "verify", "signed.tgz", ...trust]);
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stdout, new RegExp(`signed by ${teamId} at .*, trusted`));
  const ok = apply(signed, trust);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(await fs.readdir(target), ["default.txt"]);
  await fs.rm(path.join(target, "default.txt"));

  // unsigned, under --trust or GALLEY_BUNDLE_TRUST
  refused(
    apply(file, trust),
    "BUNDLE_UNTRUSTED",
    new RegExp(`web\\.tgz is not signed, and this host trusts only bundles signed by ${teamId}`),
  );
  refused(
    apply(file, [], { GALLEY_BUNDLE_TRUST: path.join(keys, "team.key.pub") }),
    "BUNDLE_UNTRUSTED",
    /is not signed/,
  );
  refused(run(["bundle", "verify", "web.tgz", ...trust]), "BUNDLE_UNTRUSTED", /is not signed/);
  // signed by a key this host does not trust
  const other = path.join(dir, "other.tgz");
  await fs.copyFile(file, other);
  assert.equal(run(["bundle", "sign", "other.tgz", "--sign-key", path.join(keys, "foreign.key")]).code, 0);
  refused(
    apply(other, trust),
    "BUNDLE_UNTRUSTED",
    new RegExp(`signed by key ${foreign.keyId}, which this host does not trust`),
  );
  // changed after signing (a sound bundle with another run list), with the old signature beside it
  const changed = await repack(
    dir,
    editManifest(entries, (m) => {
      m.runLists = { default: ["web::extra"] };
    }),
  );
  await fs.copyFile(`${signed}.sig`, `${changed}.sig`);
  refused(apply(changed, trust), "BUNDLE_UNTRUSTED", /the bundle was changed after it was signed/);
  // …and the same signature rewritten to name the new bundle does not verify
  const rewritten = { ...signature, bundle: path.basename(changed, ".tgz") };
  await fs.writeFile(`${changed}.sig`, JSON.stringify(rewritten));
  refused(apply(changed, trust), "BUNDLE_UNTRUSTED", /does not verify with key .*: it was forged or altered/);
  assert.deepEqual(await fs.readdir(target), [], "nothing converged from a refused bundle");
  // without trust configured, the same changed bundle is only checked for its own consistency
  assert.equal(apply(changed).code, 0);
  assert.deepEqual(await fs.readdir(target), ["extra.txt"]);

  // push checks the same before connecting to any host
  await fs.writeFile(path.join(dir, "hosts.ini"), "[web]\nweb1 ansible_host=127.0.0.1 ansible_port=9\n");
  refused(
    run(["push", "-i", "hosts.ini", "--bundle", "web.tgz", ...trust]),
    "BUNDLE_UNTRUSTED",
    /is not signed/,
  );
  // a wrong key file is named; --trust needs --bundle
  refused(
    apply(signed, ["--trust", path.join(keys, "team.key")]),
    "SIGNING_KEY_INVALID",
    /team\.key is not an Ed25519 public key/,
  );
  refused(
    run(["apply", "web", ...trust], path.join(dir, "host")),
    "USAGE",
    /--trust checks a bundle's signature: it needs --bundle/,
  );
});

test("apply from a kitchen: a lock whose commit was edited is LOCK_INVALID; install refuses it; the true lock runs", async () => {
  const repo = await cookbookRepo();
  const older = repo.release({ name: "base", version: "1.0.0" });
  repo.release({ name: "base", version: "1.1.0" });
  const dir = await tempDir("galley-t-kitchen-");
  await fs.writeFile(path.join(dir, "cookbooks.yaml"), `cookbooks:\n  base: { git: ${repo.url} }\n`);
  const env = { GALLEY_CACHE_DIR: await tempDir("galley-t-cache-") };
  const run = (args: string[]) => cli(args, dir, env);
  assert.equal(run(["cookbooks", "install"]).code, 0);
  const lockFile = path.join(dir, "cookbooks.lock");
  const lock = await fs.readFile(lockFile, "utf8");
  const locked = JSON.parse(lock).cookbooks.base.commit as string;
  const apply = () => run(["apply", "base", "--state-dir", path.join(dir, "state")]);
  const first = apply();
  assert.equal(first.code, 0, first.stderr);
  await fs.writeFile(lockFile, lock.replace(locked, older));
  refused(
    apply(),
    "LOCK_INVALID",
    new RegExp(`was exported from commit ${locked.slice(0, 12)}, not from the locked commit ${older}`),
  );
  refused(run(["bundle", "base"]), "LOCK_INVALID", /not from the locked commit/);
  refused(
    run(["cookbooks", "install"]),
    "LOCK_INVALID",
    new RegExp(`at commit ${older} has sha256 \\w+, but the lock says`),
  );
  await fs.writeFile(lockFile, lock);
  assert.equal(apply().code, 0);
});
