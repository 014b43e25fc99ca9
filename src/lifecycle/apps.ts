import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { uniqueTemp, withMirrorLock } from "../cookbooks/mirror-lock.ts";
import { GalleyError } from "../core/errors.ts";
import type { App } from "../stacks/schema.ts";
import type { DeployingApp, StateApp } from "../stacks/state.ts";
import type { StackContext } from "./context.ts";

// An app's source is fetched here, on the control machine, and shipped to its instances by the
// deploy run itself (Galley's built-in app-archives recipe): instances need no access to the
// app's repository, and every instance of one deploy gets exactly the same bytes.

/** Where the hosts find shipped archives: `<dir>/<app>/<revision>.tar.gz`. */
export const hostArchiveDir = "/var/lib/galley/apps";

/** An app ready to deploy: what r.stack.deploying shows, plus the archive on this machine. */
export interface PreparedApp extends DeployingApp {
  /** the .tar.gz on the control machine that the deploy ships */
  localArchive: string;
}

/** Fetches each app's source and makes its archive (cached by revision). */
export async function prepareApps(context: StackContext, apps: readonly App[]): Promise<PreparedApp[]> {
  const prepared: PreparedApp[] = [];
  for (const app of apps) {
    const state: StateApp = {
      name: app.name,
      layers: app.layers,
      source: app.source,
      environment: app.environment,
      domains: app.domains,
      deploy: app.deploy,
    };
    const { revision, localArchive } =
      app.source.type === "git" ? await gitArchive(context, app) : await fileArchive(context, app);
    prepared.push({
      ...state,
      revision,
      localArchive,
      archive: `${hostArchiveDir}/${app.name}/${revision}.tar.gz`,
    });
  }
  return prepared;
}

function cache(context: StackContext): string {
  return path.join(context.kitchen, ".galley", "cache", "apps");
}

// a URL git understands, or a path relative to the stack file
function sourceUrl(context: StackContext, url: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url) || /^[^/]+@[^/]+:/.test(url)) return url;
  return path.resolve(path.dirname(context.file), url);
}

async function gitArchive(
  context: StackContext,
  app: App,
): Promise<{ revision: string; localArchive: string }> {
  const source = app.source as Extract<App["source"], { type: "git" }>;
  const url = sourceUrl(context, source.url);
  const id = createHash("sha256").update(url).digest("hex").slice(0, 12);
  const mirror = path.join(cache(context), `${app.name}-${id}.git`);
  const where = `${context.file}: app ${app.name}`;
  // one clone or fetch of a mirror at a time: in this process (instances deploying one app at
  // once) and across processes; a clone goes to a name of its own, then into place
  await withMirrorLock(mirror, async () => {
    if (existsSync(mirror)) {
      await git(["fetch", "--quiet", "--prune", "origin"], mirror, where, url);
      return;
    }
    const temp = uniqueTemp(mirror);
    try {
      await git(["clone", "--quiet", "--mirror", "--", url, temp], undefined, where, url);
      await fs.rename(temp, mirror);
    } finally {
      await fs.rm(temp, { recursive: true, force: true });
    }
  });
  const commit = (
    await git(["rev-parse", "--verify", "--quiet", `${source.revision}^{commit}`], mirror, where, url).catch(
      () => {
        throw new GalleyError(
          "STACK_INVALID",
          `${where}: revision ${source.revision} does not exist in ${url}`,
          {
            hint: `give a branch, tag or commit of that repository (git ls-remote ${url})`,
          },
        );
      },
    )
  ).trim();
  const localArchive = path.join(cache(context), `${app.name}-${commit}.tar.gz`);
  if (!existsSync(localArchive)) {
    // concurrent deploys of one revision each write their own temp; the renames give the same bytes
    const temp = uniqueTemp(localArchive);
    try {
      await git(["archive", "--format=tar.gz", "-o", temp, commit], mirror, where, url);
      await fs.rename(temp, localArchive);
    } finally {
      await fs.rm(temp, { force: true });
    }
  }
  return { revision: commit, localArchive };
}

async function fileArchive(
  context: StackContext,
  app: App,
): Promise<{ revision: string; localArchive: string }> {
  const source = app.source as Extract<App["source"], { type: "archive" }>;
  const where = `${context.file}: app ${app.name}`;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(source.url) && !source.url.startsWith("file://")) {
    throw new GalleyError("STACK_INVALID", `${where}: archive ${source.url} is not a local file`, {
      hint: "archives are read from this machine's disk (a path relative to the stack file); use a git source for a repository",
    });
  }
  const file = path.resolve(path.dirname(context.file), source.url.replace(/^file:\/\//, ""));
  if (!existsSync(file)) {
    throw new GalleyError("STACK_INVALID", `${where}: no archive at ${file}`, {
      hint: "build the app's .tar.gz first, or fix source.url (relative to the stack file)",
    });
  }
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const sha256 = hash.digest("hex");
  if (source.sha256 && source.sha256.toLowerCase() !== sha256) {
    throw new GalleyError("STACK_INVALID", `${where}: ${file} has sha256 ${sha256}, not ${source.sha256}`, {
      hint: "the archive changed: check it, then update source.sha256",
    });
  }
  return { revision: sha256.slice(0, 16), localArchive: file };
}

function git(args: string[], gitDir: string | undefined, where: string, url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      gitDir ? [`--git-dir=${gitDir}`, ...args] : args,
      { env: { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" }, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (!error) return resolve(stdout);
        const reason = stderr.trim().split("\n").filter(Boolean).at(-1) ?? error.message;
        reject(
          new GalleyError("STACK_INVALID", `${where}: git ${args[0]} of ${url} failed: ${reason}`, {
            hint: `check the app's source.url and that this machine can reach it: git ls-remote ${url}`,
          }),
        );
      },
    );
  });
}
