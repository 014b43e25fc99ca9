import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDir } from "../src/resources/testing.ts";
import { cli } from "./support/cli.ts";

// examples/kitchen end to end: git source with tags, path cookbooks, a composite type, a
// constraint between cookbooks, lock, bundle, apply from the bundle, attrs --explain, secrets
const example = fileURLToPath(new URL("../examples/kitchen", import.meta.url));
const makeRepos = fileURLToPath(new URL("../scripts/example-kitchen.sh", import.meta.url));

async function kitchen() {
  const dir = await tempDir("galley-example-");
  await fs.cp(example, dir, { recursive: true });
  execFileSync("bash", [makeRepos, dir], { stdio: "ignore" });
  const env = { GALLEY_CACHE_DIR: await tempDir("galley-cache-"), GALLEY_SECRET_KEY_FILE: "" };
  const run = (args: string[], cwd = dir) => cli(args, cwd, env);
  const target = await tempDir();
  await fs.writeFile(path.join(dir, "target.yaml"), `base: { root: ${JSON.stringify(target)} }\n`);
  return { dir, run, target };
}

async function snapshot(dir: string): Promise<string> {
  const entries = await fs.readdir(dir, { recursive: true });
  const parts = [];
  for (const entry of entries.sort()) {
    const stat = await fs.lstat(path.join(dir, entry));
    parts.push(`${entry}:${stat.isFile() ? await fs.readFile(path.join(dir, entry), "utf8") : "dir"}`);
  }
  return parts.join("\n");
}

test("example kitchen: installs, locks, applies twice, explains attributes, bundles and applies the bundle elsewhere", async () => {
  const { dir, run, target } = await kitchen();
  const installed = run(["cookbooks", "install", "--json"]);
  assert.equal(installed.code, 0, installed.stderr);
  const lock = JSON.parse(await fs.readFile(path.join(dir, "cookbooks.lock"), "utf8"));
  // base: the highest tag satisfying ^1.0 (cookbooks.yaml), ^1.1 (web) and ^1.0 (app): not 2.0.0
  assert.equal(lock.cookbooks.base.version, "1.1.0");
  assert.match(lock.cookbooks.base.commit, /^[0-9a-f]{40}$/);
  assert.equal(lock.cookbooks.web.version, "1.2.0");

  const state = await tempDir();
  const first = run(["apply", "app", "--attrs", "target.yaml", "--state-dir", state, "--json"]);
  assert.equal(first.code, 0, first.stderr);
  assert.equal(JSON.parse(first.stdout).status, "ok");
  assert.equal(
    await fs.readFile(path.join(target, "sites", "blog", "index.html"), "utf8"),
    "<h1>Our blog</h1>\n",
  );
  assert.match(await fs.readFile(path.join(target, "sites", "docs", "site.conf"), "utf8"), /^listen 8081$/m);
  assert.match(await fs.readFile(path.join(target, "motd"), "utf8"), /^Managed by Galley\.$/m);
  const second = JSON.parse(
    run(["apply", "app", "--attrs", "target.yaml", "--state-dir", state, "--json"]).stdout,
  );
  assert.equal(second.summary.changed, 0);

  const port = run(["attrs", "app", "--attrs", "target.yaml", "--explain", "web.docs_port"]);
  assert.match(
    port.stdout,
    /override\s+recipe app::default \(site-cookbooks\/app\/recipes\/default\.ts:\d+\)\s+8081\s+← wins/,
  );
  const root = run(["attrs", "app", "--attrs", "target.yaml", "--explain", "base.root", "--json"]);
  const explained = JSON.parse(root.stdout);
  assert.deepEqual(
    explained.contributions.map((c: { level: string; line?: number }) => [c.level, c.line]),
    [
      ["default", 2],
      ["run", 1],
    ],
  );
  assert.equal(explained.winner.label, "--attrs target.yaml");

  // the same inputs make the same bundle, byte for byte
  const bundled = run(["bundle", "app", "--out", "app.tgz", "--json"]);
  assert.equal(bundled.code, 0, bundled.stderr);
  const { id } = JSON.parse(bundled.stdout);
  assert.equal(JSON.parse(run(["bundle", "app", "--out", "again.tgz", "--json"]).stdout).id, id);

  // a bundle alone converges another machine's worth of files: no sources, no lock, no cache beside it
  const elsewhere = await tempDir();
  await fs.copyFile(path.join(dir, "app.tgz"), path.join(elsewhere, "app.tgz"));
  const otherTarget = await tempDir();
  await fs.writeFile(path.join(elsewhere, "target.yaml"), `base: { root: ${JSON.stringify(otherTarget)} }\n`);
  const fromBundle = run(
    ["apply", "--bundle", "app.tgz", "--attrs", "target.yaml", "--state-dir", await tempDir()],
    elsewhere,
  );
  assert.equal(fromBundle.code, 0, fromBundle.stderr);
  assert.match(fromBundle.stdout, new RegExp(`galley apply app from bundle ${id.slice(0, 12)}`));
  assert.equal(
    (await snapshot(otherTarget)).replaceAll(otherTarget, "ROOT"),
    (await snapshot(target)).replaceAll(target, "ROOT"),
  );
});

test("example kitchen: a conflict, a missing dependency, a tampered cookbook and a wrong key each stop with a clear error and change nothing", async () => {
  const { dir, run, target } = await kitchen();
  assert.equal(run(["cookbooks", "install"]).code, 0);
  const lock = await fs.readFile(path.join(dir, "cookbooks.lock"), "utf8");
  const webMeta = path.join(dir, "site-cookbooks", "web", "cookbook.yaml");
  const original = await fs.readFile(webMeta, "utf8");

  // version conflict: web wants base ^2.0, cookbooks.yaml and app want ^1.0
  await fs.writeFile(webMeta, original.replace('base: "^1.1"', 'base: "^2.0"'));
  const conflict = run(["cookbooks", "install"]);
  assert.equal(conflict.code, 2);
  assert.match(conflict.stderr, /error\[DEPENDENCY_CONFLICT\]/);
  assert.match(conflict.stderr, /web 1\.2\.0 requires base \^2\.0/);
  assert.match(conflict.stderr, /app 0\.3\.0 requires base \^1\.0/);
  assert.equal(await fs.readFile(path.join(dir, "cookbooks.lock"), "utf8"), lock);

  // missing dependency: nothing in cookbooks.yaml provides it
  await fs.writeFile(webMeta, `${original}  tools: "*"\n`);
  const missing = run(["cookbooks", "install"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /error\[COOKBOOK_NOT_FOUND\]: .*depends on tools/);
  assert.equal(await fs.readFile(path.join(dir, "cookbooks.lock"), "utf8"), lock);
  await fs.writeFile(webMeta, original);

  // a locked cookbook changed after locking: apply and bundle refuse, the host is untouched
  await fs.appendFile(path.join(dir, "site-cookbooks", "web", "templates", "site.conf.eta"), "# edited\n");
  const stale = run(["apply", "app", "--attrs", "target.yaml", "--state-dir", await tempDir()]);
  assert.equal(stale.code, 2);
  assert.match(stale.stderr, /error\[LOCK_INVALID\]/);
  assert.match(stale.stderr, /galley cookbooks install/);
  assert.equal(run(["bundle", "app"]).code, 2);
  assert.deepEqual(await fs.readdir(target), []);
  assert.equal(run(["cookbooks", "install"]).code, 0, "re-locking accepts the change");

  // a wrong secret key: refused before anything is applied; the right one never shows the token
  const key = path.join(dir, "galley.key");
  const wrongKey = path.join(dir, "wrong.key");
  assert.equal(run(["secrets", "keygen", "--key-file", key]).code, 0);
  assert.equal(run(["secrets", "keygen", "--key-file", wrongKey]).code, 0);
  await fs.copyFile(path.join(dir, "secrets.example.yaml"), path.join(dir, "secrets.yaml"));
  assert.equal(run(["secrets", "encrypt", "secrets.yaml", "--key-file", key]).code, 0);
  const args = [
    "apply",
    "app",
    "--attrs",
    "target.yaml",
    "--attrs",
    "secrets.yaml",
    "--state-dir",
    await tempDir(),
  ];
  const wrong = run([...args, "--key-file", wrongKey]);
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /error\[SECRET_INVALID\]: .*secrets\.yaml: cannot decrypt: wrong key/);
  assert.deepEqual(await fs.readdir(target), []);
  const right = run([...args, "--key-file", key]);
  assert.equal(right.code, 0, right.stderr);
  assert.match(
    await fs.readFile(path.join(target, "sites", "blog", "site.conf"), "utf8"),
    /X-Api-Token: example-token-123/,
  );
  assert.doesNotMatch(right.stdout + right.stderr, /example-token-123/);
  assert.match(right.stdout, /content: \(none\) → \(sensitive\)/);
});
