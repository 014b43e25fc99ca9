import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire, stripTypeScriptTypes } from "node:module";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import type { Context } from "hono";
import { GalleyError } from "../../core/errors.ts";
import type { ServerEnv } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import type { ServerApp } from "../openapi.ts";

// The web panel's files: the browser code in ./ui (TypeScript with its types stripped, bare imports
// of preact and htm pointed at /ui/vendor/…), the vendor ESM builds from node_modules, style.css,
// and index.html for every page path (client-side routing). Read once, at the first request, and
// kept in memory; served with an ETag and a CSP that allows only this server's own files.

/** The folder of the panel's browser code. */
export const uiDir = fileURLToPath(new URL("./ui/", import.meta.url));

/** The Content-Security-Policy of every panel response: no inline script or style, nothing foreign. */
export const contentSecurityPolicy =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The client paths answered with index.html (Hono patterns). */
export const pagePaths = [
  "/",
  "/login",
  "/audit",
  "/users",
  "/stacks",
  "/stacks/*",
  "/deployments/*",
  "/events/*",
];

/** The bare imports the browser code may use: the vendor file each one is served as. */
export const vendorFiles = {
  preact: { file: "preact.js", pkg: "preact", entry: "dist/preact.module.js" },
  "preact/hooks": { file: "preact-hooks.js", pkg: "preact", entry: "hooks/dist/hooks.module.js" },
  htm: { file: "htm.js", pkg: "htm", entry: "dist/htm.module.js" },
  "htm/preact": { file: "htm-preact.js", pkg: "htm", entry: "preact/index.module.js" },
} as const;

/** One file as served. */
export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const types: Record<string, string> = {
  ".ts": "text/javascript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".html": "text/html; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/** Registers GET /ui/* and the page paths. */
export function register(app: ServerApp, _ctx: ServerContext): void {
  let assets: Map<string, Asset> | undefined;
  const loaded = () => {
    assets ??= loadAssets();
    return assets;
  };
  app.get("/ui/*", (c) => {
    const asset = loaded().get(c.req.path);
    if (asset === undefined)
      throw new GalleyError("NOT_FOUND", `no panel file ${c.req.path.slice(0, 200)}`, {
        hint: "the panel's files are under /ui/",
      });
    return send(c, asset);
  });
  for (const page of pagePaths) {
    app.get(page, (c) => {
      const index = loaded().get("/ui/index.html");
      if (index === undefined) throw new GalleyError("INTERNAL", "the panel's index.html is missing");
      return send(c, index);
    });
  }
}

/** Every servable file of the panel by its URL path (/ui/main.ts, /ui/vendor/preact.js, …). */
export function loadAssets(dir = uiDir): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const relative of listFiles(dir)) {
    const type = types[path.extname(relative)];
    if (type === undefined || relative.endsWith(".test.ts")) continue;
    let body = readFileSync(path.join(dir, relative));
    if (relative.endsWith(".ts")) body = Buffer.from(rewriteImports(stripTypes(body.toString("utf8"))));
    assets.set(`/ui/${relative.split(path.sep).join("/")}`, asset(body, type));
  }
  for (const { file, pkg, entry } of Object.values(vendorFiles)) {
    const root = packageRoot(pkg);
    const code = readFileSync(path.join(root, entry), "utf8").replace(
      /\n?\/\/# sourceMappingURL=\S*\s*$/,
      "\n",
    );
    assets.set(`/ui/vendor/${file}`, asset(Buffer.from(rewriteImports(code)), types[".js"] as string));
  }
  return assets;
}

/** Points the bare imports of preact and htm at their vendor files (`from "preact"` → `from "/ui/vendor/preact.js"`). */
export function rewriteImports(code: string): string {
  return code.replace(
    /(\bfrom\s*|\bimport\s*\(\s*|\bimport\s*)(["'])(preact\/hooks|preact|htm\/preact|htm)\2/g,
    (_, lead: string, quote: string, name: keyof typeof vendorFiles) =>
      `${lead}${quote}/ui/vendor/${vendorFiles[name].file}${quote}`,
  );
}

/** TypeScript without its types (positions kept); the API is experimental in Node 24. */
export function stripTypes(code: string): string {
  const emit = process.emitWarning;
  // Node warns once that stripTypeScriptTypes is experimental: that is known here, not news for the operator
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(warning).includes("stripTypeScriptTypes")) return;
    (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(code, { mode: "strip" });
  } finally {
    process.emitWarning = emit;
  }
}

/** The folder of an installed package (htm does not export its package.json: found from its main file). */
function packageRoot(pkg: string): string {
  let dir = path.dirname(createRequire(import.meta.url).resolve(pkg));
  while (dir !== path.dirname(dir)) {
    try {
      if (
        (JSON.parse(readFileSync(path.join(dir, "package.json"), "utf8")) as { name?: string }).name === pkg
      )
        return dir;
    } catch {
      // no package.json here: look further up
    }
    dir = path.dirname(dir);
  }
  throw new GalleyError("INTERNAL", `the package ${pkg} was not found`, { hint: "npm install" });
}

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` };
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.name.startsWith("."))
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

function send(c: Context<ServerEnv>, asset: Asset): Response {
  const headers = new Headers({
    "content-security-policy": contentSecurityPolicy,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-cache",
    etag: asset.etag,
  });
  if (matches(c.req.header("if-none-match"), asset.etag)) return new Response(null, { status: 304, headers });
  headers.set("content-type", asset.type);
  headers.set("content-length", String(asset.body.length));
  return new Response(new Uint8Array(asset.body), { status: 200, headers });
}

/** Whether an If-None-Match header names this ETag (weak or strong, or "*"). */
function matches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(",").some((tag) => {
    const t = tag.trim();
    return t === "*" || t.replace(/^W\//, "") === etag;
  });
}
