import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { call, testServer } from "../test-support.ts";
import {
  contentSecurityPolicy,
  loadAssets,
  pagePaths,
  register,
  rewriteImports,
  vendorFiles,
} from "./serve.ts";

// The panel's files as the server serves them: type-stripped modules that parse, bare imports
// pointed at the vendor files, the CSP and security headers, index.html for the page paths,
// nothing outside ui/ (however the path is spelled), and ETag revalidation.

/** A raw request line (no client-side normalization of `..` or `%2e`). */
function rawGet(
  server: { url: string; caPem: string },
  rawPath: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}/`,
      { method: "GET", path: rawPath, ca: server.caPem, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

test("every panel module is stripped TypeScript that parses as a module, with only served imports", () => {
  const assets = loadAssets();
  const modules = [...assets].filter(([url]) => url.endsWith(".ts") || url.endsWith(".js"));
  assert.ok(assets.has("/ui/main.ts") && assets.has("/ui/index.html") && assets.has("/ui/style.css"));
  for (const name of Object.values(vendorFiles)) assert.ok(assets.has(`/ui/vendor/${name.file}`), name.file);
  const dir = mkdtempSync(path.join(tmpdir(), "galley-panel-"));
  try {
    for (const [url, asset] of modules) {
      const code = asset.body.toString("utf8");
      assert.equal(asset.type, "text/javascript; charset=utf-8", url);
      const file = path.join(dir, `${url.replaceAll("/", "_")}.mjs`);
      writeFileSync(file, code);
      const check = spawnSync(process.execPath, ["--check", file], { encoding: "utf8" });
      assert.equal(check.status, 0, `${url} parses as a module: ${check.stderr}`);
      // every static and dynamic import is relative (another ui file) or a vendor file
      for (const match of code.matchAll(/\b(?:from|import)\s*\(?\s*(["'`])([^"'`]*)\1/g)) {
        const specifier = match[2] ?? "";
        assert.ok(
          specifier.startsWith("./") || specifier.startsWith("../") || specifier.startsWith("/ui/vendor/"),
          `${url} imports ${specifier}`,
        );
        if (specifier.startsWith("/ui/")) assert.ok(assets.has(specifier), `${url}: ${specifier} is served`);
      }
      assert.doesNotMatch(code, /sourceMappingURL/, url);
    }
    // a stripped module keeps no type syntax
    const api = assets.get("/ui/api.ts")?.body.toString("utf8") ?? "";
    assert.doesNotMatch(api, /\binterface\s+SessionInfo\b/);
    assert.match(api, /export class ApiError/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("stripping types prints no ExperimentalWarning; other warnings still print", () => {
  const serve = new URL("./serve.ts", import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(serve)}); m.loadAssets(); process.emitWarning("still here");`;
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  assert.doesNotMatch(run.stderr, /ExperimentalWarning|stripTypeScriptTypes/);
  assert.match(run.stderr, /Warning: still here/);
});

test("bare imports of preact and htm become vendor paths; others stay", () => {
  assert.equal(
    rewriteImports(
      `import{h}from"preact";import x from 'preact/hooks';export * from "htm/preact";import("htm");`,
    ),
    `import{h}from"/ui/vendor/preact.js";import x from '/ui/vendor/preact-hooks.js';export * from "/ui/vendor/htm-preact.js";import("/ui/vendor/htm.js");`,
  );
  assert.equal(
    rewriteImports(`import "./api.ts"; const s = "preact";`),
    `import "./api.ts"; const s = "preact";`,
  );
  assert.equal(rewriteImports(`import a from "preact-router"`), `import a from "preact-router"`);
});

test("the server serves the panel: page paths, files, headers, ETag, and nothing outside ui/", async (t) => {
  const server = await testServer(t, { routes: [register] });
  const headersOf = (reply: { headers: Record<string, string | string[] | undefined> }) => reply.headers;

  for (const page of [
    ...pagePaths.map((p) => p.replace("*", "web")),
    "/stacks/web/instances/a",
    "/events/3",
  ]) {
    const reply = await call(server, "GET", page);
    assert.equal(reply.status, 200, page);
    assert.match(reply.text, /<div id="app">/, page);
    assert.match(reply.text, /<script type="module" src="\/ui\/main.ts"><\/script>/);
    const h = headersOf(reply);
    assert.equal(h["content-type"], "text/html; charset=utf-8");
    assert.equal(h["content-security-policy"], contentSecurityPolicy);
    assert.equal(h["x-content-type-options"], "nosniff");
    assert.equal(h["referrer-policy"], "same-origin");
    assert.equal(h["cache-control"], "no-cache");
  }
  // no inline script or style anywhere in the page
  const index = await call(server, "GET", "/");
  assert.doesNotMatch(index.text, /<script(?![^>]*\bsrc=)[^>]*>/);
  assert.doesNotMatch(index.text, /<style|\sstyle=|\son[a-z]+=/i);

  const main = await call(server, "GET", "/ui/main.ts");
  assert.equal(main.status, 200);
  assert.equal(main.headers["content-type"], "text/javascript; charset=utf-8");
  assert.equal(main.headers["content-security-policy"], contentSecurityPolicy);
  assert.match(main.text, /from "\/ui\/vendor\/htm-preact.js"/);
  const css = await call(server, "GET", "/ui/style.css");
  assert.equal(css.headers["content-type"], "text/css; charset=utf-8");
  const vendor = await call(server, "GET", "/ui/vendor/preact-hooks.js");
  assert.equal(vendor.status, 200);
  assert.match(vendor.text, /from"\/ui\/vendor\/preact.js"/);

  // ETag: the same body is not sent again
  const etag = String(main.headers.etag);
  assert.match(etag, /^"[A-Za-z0-9_-]{20,}"$/);
  const again = await call(server, "GET", "/ui/main.ts", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  assert.equal(again.text, "");
  assert.equal(again.headers.etag, etag);
  const weak = await call(server, "GET", "/ui/main.ts", { headers: { "if-none-match": `"x", W/${etag}` } });
  assert.equal(weak.status, 304);
  const changed = await call(server, "GET", "/ui/main.ts", { headers: { "if-none-match": '"other"' } });
  assert.equal(changed.status, 200);

  // only the panel's files: no traversal, no test files, no tsconfig, no source maps
  for (const raw of [
    "/ui/../serve.ts",
    "/ui/%2e%2e/serve.ts",
    "/ui/..%2fserve.ts",
    "/ui/%2e%2e%2f%2e%2e%2fauth.ts",
    "/ui/..%5cserve.ts",
    "/ui//etc/passwd",
    "/ui/vendor/../../../../package.json",
    "/ui/vendor/%2e%2e/%2e%2e/package.json",
    "/ui/tsconfig.json",
    "/ui/pages/../../serve.test.ts",
    "/ui/vendor/preact.js.map",
    "/ui/main.ts%00.css",
    "/ui/",
  ]) {
    const reply = await rawGet(server, raw);
    assert.ok(reply.status === 404 || reply.status === 400, `${raw}: ${reply.status}`);
    assert.doesNotMatch(reply.body, /import|createHash|"name": "galley"|root:/, raw);
  }
  const missing = await call(server, "GET", "/ui/pages/nothing.ts");
  assert.equal(missing.status, 404);
  assert.equal((missing.json as { error: { code: string } }).error.code, "NOT_FOUND");

  // the API keeps its JSON 404
  const api = await call(server, "GET", "/v1/nothing");
  assert.equal(api.status, 404);
  assert.equal((api.json as { error: { code: string } }).error.code, "NOT_FOUND");
  // HEAD answers like GET without a body
  const head = await call(server, "HEAD", "/login");
  assert.equal(head.status, 200);
  assert.equal(head.text, "");
});
