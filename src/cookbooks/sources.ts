import { createHash } from "node:crypto";
import * as path from "node:path";
import * as v from "valibot";
import { isMap, isScalar } from "yaml";
import { parseYamlForLines, readYamlText } from "../core/yaml.ts";
import { parseYamlFile } from "./cookbook.ts";
import { isConstraint } from "./versions.ts";

/** A cookbook in a local folder, relative to the kitchen. */
export interface PathSource {
  path: string;
  version?: string;
}

/** A cookbook in a git repository: at a tag, a branch, a ref, or (none of them) its version tags. */
export interface GitSource {
  git: string;
  tag?: string;
  branch?: string;
  ref?: string;
  subdir?: string;
  version?: string;
}

/** Where one cookbook comes from, as written in cookbooks.yaml. */
export type CookbookSource = PathSource | GitSource;

/** A kitchen's cookbooks.yaml, parsed and validated. */
export interface Sources {
  /** the kitchen root (absolute) */
  root: string;
  /** the cookbooks.yaml file (absolute) */
  file: string;
  /** cookbook name → source, in file order */
  cookbooks: Map<string, CookbookSource>;
  /** sha256 of the parsed content: the lock records it to notice a changed cookbooks.yaml */
  sha256: string;
  /** cookbook name → the line of its entry, for errors */
  lines: Map<string, number>;
}

/** The name of the file at a kitchen's root that names every cookbook it needs. */
export const sourcesFileName = "cookbooks.yaml";

export const cookbookNameSchema = v.pipe(
  v.string(),
  v.regex(
    /^[a-z][a-z0-9_-]*$/,
    "a cookbook name: lowercase letters, digits, - and _, starting with a letter",
  ),
);

// a revision or URL starting with "-" would be read by git as an option
const notOption = (text: string) => !text.startsWith("-");
const revisionSchema = v.pipe(v.string(), v.minLength(1), v.check(notOption, "must not start with -"));

const fieldsSchema = v.strictObject({
  path: v.optional(v.pipe(v.string(), v.minLength(1, "a folder, relative to the kitchen"))),
  git: v.optional(v.pipe(v.string(), v.minLength(1), v.check(notOption, "a repository URL or path"))),
  tag: v.optional(revisionSchema),
  branch: v.optional(revisionSchema),
  ref: v.optional(revisionSchema),
  subdir: v.optional(
    v.pipe(
      v.string(),
      v.check(isInsideRepository, "a folder inside the repository, like tools or cookbooks/tools"),
    ),
  ),
  version: v.optional(
    v.pipe(v.string(), v.check(isConstraint, 'a version constraint like "^1.2", "~2.3.1" or ">= 1.0 < 2"')),
  ),
});

/** One source entry: exactly one of path/git, and at most one of tag/branch/ref. */
export const sourceSchema = v.pipe(
  fieldsSchema,
  v.check(
    (s) => (s.path === undefined) !== (s.git === undefined),
    "give exactly one of path: (a local folder) or git: (a repository URL or path)",
  ),
  v.check(
    (s) => s.path === undefined || [s.tag, s.branch, s.ref, s.subdir].every((x) => x === undefined),
    "tag, branch, ref and subdir belong to git sources, not to path sources",
  ),
  v.check(
    (s) => [s.tag, s.branch, s.ref].filter((x) => x !== undefined).length <= 1,
    "give at most one of tag, branch or ref",
  ),
  v.transform((s): CookbookSource => canonicalSource(s as CookbookSource)),
);

const sourcesSchema = v.strictObject({
  cookbooks: v.pipe(
    v.nullish(v.record(cookbookNameSchema, sourceSchema)),
    v.transform((value) => value ?? {}),
  ),
});

/** The kitchen's cookbooks.yaml, or undefined when it has none. Errors name cookbooks.yaml:line and the field. */
export async function loadSources(root: string): Promise<Sources | undefined> {
  const kitchen = path.resolve(root);
  const file = path.join(kitchen, sourcesFileName);
  const text = await readYamlText(file, { code: "SOURCE_INVALID" });
  if (text === undefined) return undefined;
  const parsed = parseYamlFile(file, text, sourcesSchema, "SOURCE_INVALID");
  const cookbooks = new Map(Object.entries(parsed.cookbooks ?? {}));
  return { root: kitchen, file, cookbooks, sha256: sourcesDigest(cookbooks), lines: entryLines(text) };
}

/** The sha256 of cookbooks.yaml's content as parsed: comments, order and layout do not count. */
export function sourcesDigest(cookbooks: ReadonlyMap<string, CookbookSource>): string {
  const sorted = [...cookbooks.keys()].sort().map((name) => [name, canonicalSource(cookbooks.get(name)!)]);
  return createHash("sha256").update(JSON.stringify(sorted)).digest("hex");
}

/** A source with its keys in one fixed order and without undefined fields (for the lock and digests). */
export function canonicalSource(source: CookbookSource): CookbookSource {
  const order = ["path", "git", "tag", "branch", "ref", "subdir", "version"] as const;
  const out: Record<string, string> = {};
  for (const key of order) {
    const value = (source as unknown as Record<string, string | undefined>)[key];
    if (value !== undefined) out[key] = key === "subdir" ? normalizeSubdir(value) : value;
  }
  return out as unknown as CookbookSource;
}

/** Whether a source is a git source. */
export function isGitSource(source: CookbookSource): source is GitSource {
  return "git" in source;
}

/** Whether two sources fetch the same thing (the version constraint aside). */
export function sameOrigin(a: CookbookSource, b: CookbookSource): boolean {
  const { version: _a, ...restA } = canonicalSource(a);
  const { version: _b, ...restB } = canonicalSource(b);
  return JSON.stringify(restA) === JSON.stringify(restB);
}

/** A short human description: `path ./web`, `git URL tag v1.1.0 subdir tools`. */
export function describeSource(source: CookbookSource): string {
  if (!isGitSource(source)) return `path ${source.path}`;
  const parts = [`git ${source.git}`];
  if (source.tag !== undefined) parts.push(`tag ${source.tag}`);
  if (source.branch !== undefined) parts.push(`branch ${source.branch}`);
  if (source.ref !== undefined) parts.push(`ref ${source.ref}`);
  if (source.subdir !== undefined) parts.push(`subdir ${source.subdir}`);
  return parts.join(" ");
}

/** The folder of a path source (relative paths are relative to the kitchen). */
export function pathSourceDir(root: string, source: PathSource): string {
  return path.resolve(root, source.path);
}

/**
 * What git is given for a git source: URLs as written, local paths made absolute (relative to the
 * kitchen), so that the same repository has one cache mirror wherever galley runs from.
 */
export function gitUrl(root: string, source: GitSource): string {
  const isUrl = source.git.includes("://") || /^[^/:]+:/.test(source.git);
  return isUrl ? source.git : path.resolve(root, source.git);
}

/** `cookbooks.yaml:LINE` for a cookbook's entry (or the file alone when unknown). */
export function entryLabel(sources: Pick<Sources, "file" | "lines">, name: string): string {
  const line = sources.lines.get(name);
  return `${sources.file}${line ? `:${line}` : ""}`;
}

/** The subdir without ./ and trailing slashes ("" for the repository root). */
export function normalizeSubdir(subdir: string): string {
  return path.posix
    .normalize(subdir)
    .replace(/^\.\/?/, "")
    .replace(/\/+$/, "");
}

function isInsideRepository(subdir: string): boolean {
  const normal = path.posix.normalize(subdir);
  return !path.posix.isAbsolute(normal) && normal !== ".." && !normal.startsWith("../");
}

// the line of each cookbook's key under `cookbooks:` (parseYamlFile returns values, not positions)
function entryLines(text: string): Map<string, number> {
  const { doc, lineCounter } = parseYamlForLines(text);
  const lines = new Map<string, number>();
  const map = doc.get("cookbooks", true);
  if (!isMap(map)) return lines;
  for (const item of map.items) {
    if (isScalar(item.key) && item.key.range)
      lines.set(String(item.key.value), lineCounter.linePos(item.key.range[0]).line);
  }
  return lines;
}
