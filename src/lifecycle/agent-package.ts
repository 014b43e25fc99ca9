import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createWriteStream, existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { createGzip } from "node:zlib";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

// The agent package: everything a host needs to run Galley with no Node.js of its own: Galley's
// src/, bin/ and package.json, the production node_modules (not the dev ones), and the Node.js 24
// binary as `node`. Built once per Galley content into the kitchen's cache, named by its sha256.

/** Galley's own folder (package.json, src/, bin/, node_modules/). */
export const galleyRoot = fileURLToPath(new URL("../../", import.meta.url));

/** A built agent package. */
export interface AgentPackage {
  /** sha256 (hex) of the .tgz: the folder it is unpacked to on hosts, /opt/galley/<sha> */
  sha: string;
  file: string;
  bytes: number;
}

interface LockEntry {
  dev?: boolean;
  optional?: boolean;
  devOptional?: boolean;
}

/**
 * The agent package of this Galley, from `cacheDir` when one was built from the same files (their
 * paths, sizes and times), else built there now. `<cacheDir>/<fingerprint>.json` names the tgz.
 *
 * @example const pkg = await agentPackage(".galley/cache/agent") // { sha: "9c…", file: ".galley/cache/agent/galley-agent-9c….tgz", bytes: 48213344 }
 */
export async function agentPackage(cacheDir: string, root = galleyRoot): Promise<AgentPackage> {
  const files = await packageFiles(root);
  const fingerprint = await fingerprintOf(root, files);
  const index = path.join(cacheDir, `${fingerprint}.json`);
  const known = await fs
    .readFile(index, "utf8")
    .then((text) => JSON.parse(text) as AgentPackage)
    .catch(() => undefined);
  if (known && existsSync(known.file)) return known;
  await fs.mkdir(cacheDir, { recursive: true });
  const built = await build(root, files, cacheDir);
  await writeFileAtomic(index, `${JSON.stringify(built)}\n`);
  return built;
}

/** The package's files, relative to Galley's folder, sorted; the Node.js binary last (it becomes `node`). */
export async function packageFiles(root = galleyRoot): Promise<string[]> {
  const files: string[] = ["package.json"];
  files.push(...(await walk(root, "bin")));
  files.push(...(await walk(root, "src")).filter((file) => !file.endsWith(".test.ts")));
  for (const dir of await productionModules(root)) files.push(...(await walk(root, dir)));
  files.sort();
  files.push(nodeBinary(root));
  return files;
}

/** The Node.js 24 binary shipped: the one pinned in Galley's node_modules. */
function nodeBinary(root: string): string {
  const pinned = path.join("node_modules", "node", "bin", "node");
  if (!existsSync(path.join(root, pinned))) {
    throw new GalleyError(
      "FILE_NOT_FOUND",
      `no Node.js binary at ${path.join(root, pinned)} to ship to the host`,
      {
        hint: "install Galley's dependencies (npm ci): the node package brings the Node.js 24 the agent runs on",
      },
    );
  }
  return pinned;
}

// the lock's packages a production install has: not dev, not optional (native build helpers), no types
async function productionModules(root: string): Promise<string[]> {
  const lock = JSON.parse(await fs.readFile(path.join(root, "package-lock.json"), "utf8")) as {
    packages: Record<string, LockEntry>;
  };
  return Object.entries(lock.packages)
    .filter(
      ([dir, entry]) =>
        dir.startsWith("node_modules/") && !entry.dev && !entry.optional && !entry.devOptional,
    )
    .map(([dir]) => dir)
    .filter((dir) => !dir.includes("/@types/"))
    .filter((dir) => existsSync(path.join(root, dir)));
}

// every file under `dir` (relative to root), not entering nested node_modules (the lock lists those)
async function walk(root: string, dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules") out.push(...(await walk(root, rel)));
    } else if (entry.isFile() || entry.isSymbolicLink()) out.push(rel);
  }
  return out;
}

async function fingerprintOf(root: string, files: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const file of files) {
    const stat = await fs.stat(path.join(root, file));
    hash.update(`${file}\0${stat.size}\0${stat.mtimeMs}\n`);
  }
  return hash.digest("hex");
}

// GNU tar (sorted, owner 0, fixed times) gzipped here: the same files make the same bytes
async function build(root: string, files: readonly string[], cacheDir: string): Promise<AgentPackage> {
  const temp = path.join(cacheDir, `.building-${process.pid}-${Date.now()}.tgz`);
  const node = files.at(-1)!;
  const tar = spawn(
    "tar",
    [
      ...["-cf", "-", "-C", root, "--owner=0", "--group=0", "--numeric-owner", "--mtime=@0", "--dereference"],
      ...["--format=gnu", `--transform=s,^${node.replaceAll(".", "\\.")}$,node,`, "--null", "-T", "-"],
    ],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  tar.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  tar.stdin.end(files.map((file) => `${file}\0`).join(""));
  const hash = createHash("sha256");
  let bytes = 0;
  const gzip = createGzip({ level: 6 });
  gzip.on("data", (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  const exited = new Promise<number>((resolve) => tar.on("close", (code) => resolve(code ?? 1)));
  try {
    await pipeline(tar.stdout, gzip, createWriteStream(temp));
    const code = await exited;
    if (code !== 0) throw new Error(`tar exited ${code}: ${stderr.trim()}`);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw new GalleyError("PROVIDER_FAILED", `cannot build the agent package: ${errorMessage(error)}`, {
      hint: "the machine needs GNU tar; check the free space of the kitchen's .galley/cache",
    });
  }
  const sha = hash.digest("hex");
  const file = path.join(cacheDir, `galley-agent-${sha}.tgz`);
  await fs.rename(temp, file);
  return { sha, file, bytes };
}
