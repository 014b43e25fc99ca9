import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { tempPath } from "../core/temp-files.ts";
import { withMirrorLock } from "./mirror-lock.ts";

// The one git mirror of Galley: a bare `--mirror` clone of a repository in a cache folder, shared
// by cookbook sources (<cache>/git/) and app sources (<kitchen>/.galley/cache/apps/). Cloned the
// first time, fetched after; one clone or fetch of a mirror at a time (mirror-lock.ts).

/** What git said: whether it succeeded, and its output. */
export interface GitResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/**
 * Runs git without a shell, never prompting (a missing credential fails instead of hanging), with
 * English messages; `gitDir` is the repository (`--git-dir`). A missing git is SOURCE_INVALID.
 *
 * @example const { ok, stdout } = await git(["rev-parse", "HEAD"], mirrorDir);
 */
export function git(args: readonly string[], gitDir?: string): Promise<GitResult> {
  const argv = gitDir ? [`--git-dir=${gitDir}`, ...args] : [...args];
  return new Promise((resolve, reject) => {
    execFile("git", argv, { env: gitEnv(), maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if ((error as NodeJS.ErrnoException | null)?.code === "ENOENT") {
        reject(
          new GalleyError("SOURCE_INVALID", "git is not installed: git sources need it", {
            hint: "install git, or use path: sources and archive apps",
          }),
        );
        return;
      }
      resolve({ ok: !error, stdout, stderr: stderr || (error?.message ?? "") });
    });
  });
}

/** The environment git runs in: no prompt, messages in English (errors quote them). */
export function gitEnv(): NodeJS.ProcessEnv {
  return { ...process.env, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };
}

/** A short stable id of a repository URL, for the mirror's folder name: the first `length` hex digits of its sha256. */
export function urlId(url: string, length = 16): string {
  return createHash("sha256").update(url).digest("hex").slice(0, length);
}

/** Why a git command failed, in one line: its last line of stderr. */
export function gitReason(result: GitResult): string {
  return result.stderr.trim().split("\n").filter(Boolean).at(-1) ?? "git failed";
}

/**
 * Brings the mirror `dir` of `url` up to date and returns `dir`: a clone the first time (into a
 * temp name beside it, renamed into place, so a killed clone never looks like a mirror), a fetch
 * with prune after. Alone per mirror: after earlier calls of this process, holding `<dir>.lock`
 * against other processes. A failing clone or fetch rejects with `failed(command, reason)`.
 *
 * @example await syncMirror(path.join(cache, "git", `${urlId(url)}.git`), url, (cmd, why) => new Error(why))
 */
export function syncMirror(
  dir: string,
  url: string,
  failed: (command: "clone" | "fetch", reason: string) => Error,
): Promise<string> {
  return withMirrorLock(dir, async () => {
    if (await exists(dir)) {
      // the mirror's refspec (+refs/*:refs/*) already forces tags: --tags would refuse a moved tag
      const result = await git(["fetch", "--quiet", "--prune", "origin"], dir);
      if (!result.ok) throw failed("fetch", gitReason(result));
      return dir;
    }
    const temp = tempPath(dir);
    try {
      const result = await git(["clone", "--quiet", "--mirror", "--", url, temp]);
      if (!result.ok) throw failed("clone", gitReason(result));
      await fs.rename(temp, dir);
    } finally {
      await fs.rm(temp, { recursive: true, force: true });
    }
    return dir;
  });
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** The mirror folder of `url` under `root`: `<root>/<prefix><urlId>.git`. */
export function mirrorPath(root: string, url: string, prefix = "", idLength = 16): string {
  return path.join(root, `${prefix}${urlId(url, idLength)}.git`);
}
