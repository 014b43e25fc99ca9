import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { tempDir } from "../../src/resources/testing.ts";

/** A fixed identity and no system git config, for the tests' own commits. */
export const gitEnv = {
  ...process.env,
  GIT_AUTHOR_NAME: "Galley Test",
  GIT_AUTHOR_EMAIL: "test@galley.invalid",
  GIT_COMMITTER_NAME: "Galley Test",
  GIT_COMMITTER_EMAIL: "test@galley.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
};

/** Runs git in a directory for a test's own setup. */
export function sh(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, { cwd, env: gitEnv, encoding: "utf8", stdio: "pipe" }).trim();
}

/** One release of a cookbook into a repository. */
export interface Release {
  name: string;
  version: string;
  depends?: Record<string, string>;
  /** folder of the cookbook inside the repository ("" = the root) */
  subdir?: string;
  /** the tag to create: default `v<version>`; false for none */
  tag?: string | false;
  annotated?: boolean;
  branch?: string;
  /** extra files (path → content) inside the cookbook folder */
  files?: Record<string, string>;
}

/** A bare repository on disk with a work tree that pushes to it. */
export interface CookbookRepo {
  /** the bare repository: what cookbooks.yaml's git: names */
  url: string;
  /** commits (and tags, pushes) one release; returns the commit */
  release(release: Release): string;
}

/** A fresh bare repository (branch main) in a temp dir. */
export async function cookbookRepo(): Promise<CookbookRepo> {
  const root = await tempDir("galley-t-repo-");
  const url = path.join(root, "cookbooks.git");
  const work = path.join(root, "work");
  sh(root, "init", "--quiet", "--bare", "--initial-branch=main", url);
  sh(root, "init", "--quiet", "--initial-branch=main", work);
  sh(work, "remote", "add", "origin", url);
  return {
    url,
    release(release) {
      const branch = release.branch ?? "main";
      // a new branch starts from the current commit (or is the first one)
      const exists = sh(work, "branch", "--list", branch) !== "";
      sh(work, "checkout", "--quiet", ...(exists ? [branch] : ["-b", branch]));
      writeCookbookSync(path.join(work, release.subdir ?? ""), release);
      sh(work, "add", "-A");
      sh(work, "commit", "--quiet", "--allow-empty", "-m", `${release.name} ${release.version}`);
      sh(work, "push", "--quiet", "origin", branch);
      const tag = release.tag === undefined ? `v${release.version}` : release.tag;
      if (tag !== false) {
        if (release.annotated) sh(work, "tag", "-f", "-a", tag, "-m", `release ${tag}`);
        else sh(work, "tag", "-f", tag);
        sh(work, "push", "--quiet", "--force", "origin", `refs/tags/${tag}`);
      }
      return sh(work, "rev-parse", "HEAD");
    },
  };
}

/** Writes a cookbook (cookbook.yaml, a default recipe, extra files) into a folder. */
export function writeCookbookSync(dir: string, release: Release): void {
  const depends = Object.entries(release.depends ?? {})
    .map(([name, constraint]) => `\n  ${name}: "${constraint}"`)
    .join("");
  const files: Record<string, string> = {
    "cookbook.yaml": `name: ${release.name}\nversion: ${release.version}\n${depends ? `depends:${depends}\n` : ""}`,
    "recipes/default.ts": `export default async function (r) {}\n// ${release.name} ${release.version}\n`,
    ...release.files,
  };
  for (const [file, text] of Object.entries(files)) {
    const target = path.join(dir, file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
}

/** Writes a kitchen's cookbooks.yaml (and returns the kitchen). */
export async function writeSources(kitchen: string, yaml: string): Promise<string> {
  await fs.writeFile(path.join(kitchen, "cookbooks.yaml"), yaml);
  return kitchen;
}
