import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { rootStateDir } from "../hosts/statedir.ts";
import { tempPath } from "../core/temp-files.ts";
import { git, gitReason, mirrorPath, syncMirror } from "../sources/mirror.ts";
import type { App } from "../stacks/schema.ts";
import type { DeployingApp, StateApp } from "../stacks/state.ts";
import type { StackContext } from "./context.ts";

// An app's source is fetched here, on the control machine, and shipped to its instances by the
// deploy run itself (Galley's built-in app-archives recipe): instances need no access to the
// app's repository, and every instance of one deploy gets exactly the same bytes.

/** Where the hosts find shipped archives: `<dir>/<app>/<revision>.tar.gz`. */
export const hostArchiveDir = `${rootStateDir}/apps`;

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
  const mirror = mirrorPath(cache(context), url, `${app.name}-`, 12);
  const where = `${context.file}: app ${app.name}`;
  // one clone or fetch of a mirror at a time: in this process (instances deploying one app at
  // once) and across processes (sources/mirror.ts)
  await syncMirror(mirror, url, (command, reason) => gitFailed(where, command, url, reason));
  const commit = (
    await run(["rev-parse", "--verify", "--quiet", `${source.revision}^{commit}`], mirror, where, url).catch(
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
    const temp = tempPath(localArchive);
    try {
      await run(["archive", "--format=tar.gz", "-o", temp, commit], mirror, where, url);
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

// a git command on the app's mirror: its stdout, or an error naming the app and its source
async function run(args: string[], gitDir: string, where: string, url: string): Promise<string> {
  const result = await git(args, gitDir);
  if (!result.ok) throw gitFailed(where, args[0]!, url, gitReason(result));
  return result.stdout;
}

function gitFailed(where: string, command: string, url: string, reason: string): GalleyError {
  return new GalleyError("STACK_INVALID", `${where}: git ${command} of ${url} failed: ${reason}`, {
    hint: `check the app's source.url and that this machine can reach it: git ls-remote ${url}`,
  });
}
