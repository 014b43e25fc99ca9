import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { promisify } from "node:util";
import * as zlib from "node:zlib";
import { Header } from "tar/header";
import { Pax } from "tar/pax";
import * as v from "valibot";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { loadCookbook, parseCookbookMetadata } from "./cookbook.ts";
import { cookbookDigest, cookbookEntries, type DigestEntry, digestOf } from "./digest.ts";
import { runListsProblem } from "./bundle-runlists.ts";
import { type Lockfile, parseLock } from "./lock.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

/** One locked cookbook to pack: its folder and the content digest the lock pins for it. */
export interface BundleCookbook {
  name: string;
  version: string;
  dir: string;
  sha256: string;
}

/** What a bundle is made of: the locked cookbooks, the lock text (stored verbatim) and named run lists. */
export interface BundleInput {
  cookbooks: BundleCookbook[];
  lock: string;
  runLists?: Record<string, string[]>;
}

/** Where createBundle writes: `<dir>/<id>.tgz`, or exactly `file` (`galley bundle --out FILE`). */
export type BundleOut = { dir: string } | { file: string };

/** bundle.json: the format version, every cookbook with its content digest, and the run lists. */
export interface BundleManifest {
  format: 1;
  cookbooks: { name: string; version: string; sha256: string }[];
  runLists: Record<string, string[]>;
}

/** A bundle written by createBundle: its id (sha256 of the archive), where it is, and its size. */
export interface CreatedBundle {
  id: string;
  file: string;
  bytes: number;
}

/** A verified, extracted bundle: `cookbooksDir` holds one folder per cookbook, ready for loadCookbooks. */
export interface OpenedBundle {
  id: string;
  dir: string;
  lock: string;
  manifest: BundleManifest;
  cookbooksDir: string;
}

export { runListItemsProblem } from "./bundle-runlists.ts";

/** How openBundle checks more than the bundle's own consistency. */
export interface OpenOptions {
  /** called with the id (of the bytes read) before anything is unpacked: throws to refuse the bundle */
  verify?: (id: string) => void;
}

/** One archive member: a file's content or a symlink's target, at its path in the archive. */
interface Member {
  path: string;
  kind: DigestEntry["kind"];
  data: Buffer;
}

const MANIFEST = "bundle.json";
const LOCK = "cookbooks.lock";
const COOKBOOKS = "cookbooks";
// every entry gets the same time, so when or where a bundle is made never changes its bytes
const EPOCH = new Date(0);
const GZIP = { level: 9, memLevel: 8, windowBits: 15, strategy: zlib.constants.Z_DEFAULT_STRATEGY };
const cookbookName = /^[a-z][a-z0-9_-]*$/;
const idFileName = /^([0-9a-f]{64})\.tgz$/;
const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

const manifestSchema = v.strictObject({
  format: v.literal(1),
  cookbooks: v.array(
    v.strictObject({
      name: v.pipe(v.string(), v.regex(cookbookName)),
      version: v.string(),
      sha256: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
    }),
  ),
  runLists: v.record(v.string(), v.array(v.string())),
});

/**
 * Packs the locked cookbooks, the lock and the run lists into one deterministic gzipped tar and writes
 * it atomically. Each cookbook's content must still have the digest the lock pins (else LOCK_INVALID).
 *
 * @example await createBundle({ cookbooks, lock, runLists: { web: ["base", "web"] } }, { dir: ".galley/bundles" })
 */
export async function createBundle(input: BundleInput, out: BundleOut): Promise<CreatedBundle> {
  const cookbooks = [...input.cookbooks].sort((a, b) => compare(a.name, b.name));
  checkNames(cookbooks);
  const mismatch = lockMismatch(cookbooks, parseLock(lockFileLabel, input.lock));
  if (mismatch) {
    const hint = "bundle exactly the locked cookbooks; galley cookbooks install re-locks them";
    throw new GalleyError(
      "LOCK_INVALID",
      `the cookbooks to bundle do not match cookbooks.lock: ${mismatch}`,
      { hint },
    );
  }
  const manifest: BundleManifest = {
    format: 1,
    cookbooks: cookbooks.map(({ name, version, sha256 }) => ({ name, version, sha256 })),
    runLists: Object.fromEntries(
      Object.entries(input.runLists ?? {})
        .sort(([a], [b]) => compare(a, b))
        .map(([name, items]) => [name, [...items]]),
    ),
  };
  const members: Member[] = [
    { path: MANIFEST, kind: "file", data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) },
    { path: LOCK, kind: "file", data: Buffer.from(input.lock) },
  ];
  for (const cookbook of cookbooks) members.push(...(await readLockedCookbook(cookbook)));
  // the same checks as opening: a bundle that could not be opened is never written
  const runListProblem = runListsProblem(manifest.runLists, manifestNames(manifest), holds(members));
  if (runListProblem) {
    throw new GalleyError("BUNDLE_INVALID", `cannot bundle this run list: ${runListProblem}`, {
      hint: "a bundle runs only its own cookbooks: name items as cookbook or cookbook::recipe of the locked cookbooks (a lone recipe file cannot be bundled: put it in a cookbook)",
    });
  }
  const archive = await pack(members);
  const id = sha256(archive);
  const file = "dir" in out ? path.join(path.resolve(out.dir), `${id}.tgz`) : path.resolve(out.file);
  await writeAtomic(file, archive);
  return { id, file, bytes: archive.length };
}

/** The id of a bundle file: the sha256 (hex) of its bytes. */
export async function bundleId(file: string): Promise<string> {
  const hash = createHash("sha256");
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (error) {
    throw readFailure(file, error);
  }
  return hash.digest("hex");
}

/**
 * Verifies a bundle and extracts it into `<cacheDir>/bundles/<id>/`: the file must match the id in its
 * name, every entry must stay inside the bundle, every cookbook must match bundle.json and the lock (its
 * digest, its cookbook.yaml's name, version and depends), and every run list item must name a recipe of a
 * cookbook in the bundle. Nothing is unpacked before `options.verify` accepted the id.
 * An existing extraction is reused only when it still matches the archive exactly; otherwise it is
 * replaced by a fresh one.
 */
export async function openBundle(
  file: string,
  cacheDir: string,
  options: OpenOptions = {},
): Promise<OpenedBundle> {
  const { id, manifest, lock, members } = await readBundle(file, options);
  const dir = path.join(path.resolve(cacheDir), "bundles", id);
  let problem = await treeProblem(dir, members);
  // processes replacing a modified extraction at once can catch each other mid-swap: a round more settles it
  for (let round = 0; problem !== undefined && round < 3; round++) {
    await extract(members, dir);
    problem = await treeProblem(dir, members);
  }
  if (problem) throw invalid(file, `its extraction in ${dir} does not match it: ${problem}`);
  for (const cookbook of manifest.cookbooks) {
    if ((await cookbookDigest(path.join(dir, COOKBOOKS, cookbook.name))) !== cookbook.sha256) {
      throw invalid(file, `cookbook ${cookbook.name} in ${dir} does not match bundle.json and the lock`);
    }
  }
  return { id, dir, lock, manifest, cookbooksDir: path.join(dir, COOKBOOKS) };
}

/**
 * Verifies a bundle as openBundle does, writing nothing: its id, manifest and lock. What
 * `galley bundle verify` runs.
 */
export async function inspectBundle(
  file: string,
  options: OpenOptions = {},
): Promise<Omit<OpenedBundle, "dir" | "cookbooksDir">> {
  const { members: _members, ...inspected } = await readBundle(file, options);
  return inspected;
}

async function readBundle(file: string, options: OpenOptions) {
  const archive = await fs.readFile(file).catch((error: unknown) => {
    throw readFailure(file, error);
  });
  const id = sha256(archive);
  const named = idFileName.exec(path.basename(file))?.[1];
  if (named !== undefined && named !== id) {
    throw invalid(file, `content does not match its id (its sha256 is ${id})`);
  }
  options.verify?.(id);
  const members = checkMembers(await unpack(archive, file), file);
  const manifest = readManifest(members, file);
  const lock = members.find((m) => m.path === LOCK)!.data.toString();
  checkCookbooks(members, manifest, lock, file);
  const runListProblem = runListsProblem(manifest.runLists, manifestNames(manifest), holds(members));
  if (runListProblem) {
    throw new GalleyError("BUNDLE_INVALID", `bundle ${file}: bundle.json: ${runListProblem}`, {
      hint: "a bundle runs only its own cookbooks' recipes: do not run it; make it again with galley bundle, naming cookbook or cookbook::recipe",
    });
  }
  return { id, manifest, lock, members };
}

function checkNames(cookbooks: readonly BundleCookbook[]): void {
  for (const [i, cookbook] of cookbooks.entries()) {
    if (!cookbookName.test(cookbook.name) || cookbooks[i + 1]?.name === cookbook.name) {
      const hint = "cookbook names are unique lowercase names; galley cookbooks install re-locks them";
      throw new GalleyError(
        "LOCK_INVALID",
        `cookbook name ${JSON.stringify(cookbook.name)} is invalid or repeated`,
        { hint },
      );
    }
  }
}

const lockFileLabel = "cookbooks.lock";

function manifestNames(manifest: BundleManifest): Set<string> {
  return new Set(manifest.cookbooks.map((c) => c.name));
}

/** Whether the members hold a cookbook's recipe file (`cookbooks/<name>/recipes/<recipe>.ts|js|mjs`). */
function holds(members: readonly Member[]): (cookbook: string, recipe: string) => string | undefined {
  const paths = new Set(members.map((m) => m.path));
  return (cookbook, recipe) => {
    const base = `${COOKBOOKS}/${cookbook}/recipes/${recipe}`;
    return [".ts", ".js", ".mjs"].some((ext) => paths.has(base + ext)) ? undefined : `${base}.ts`;
  };
}

/** What differs between the cookbooks and the lock's pins, or undefined when they agree. */
function lockMismatch(cookbooks: readonly BundleManifest["cookbooks"][number][], lock: Lockfile) {
  const pins = new Map(Object.entries(lock.cookbooks));
  for (const cookbook of cookbooks) {
    const pin = pins.get(cookbook.name);
    if (!pin) return `cookbooks.lock does not pin cookbook ${cookbook.name}`;
    if (pin.sha256 !== cookbook.sha256) {
      return `cookbook ${cookbook.name} ${cookbook.version} (sha256 ${cookbook.sha256}) differs from cookbooks.lock (${pin.version}, sha256 ${pin.sha256})`;
    }
    if (pin.version !== cookbook.version) {
      return `cookbook ${cookbook.name} ${cookbook.version} differs from cookbooks.lock, which pins version ${pin.version} (the sha256 is the same)`;
    }
    pins.delete(cookbook.name);
  }
  const [missing] = pins.keys();
  return missing === undefined
    ? undefined
    : `cookbooks.lock pins cookbook ${missing}, which is not in the bundle`;
}

/** The files of a cookbook as members, read once: the bytes packed are the bytes whose digest is checked. */
async function readLockedCookbook(cookbook: BundleCookbook): Promise<Member[]> {
  const entries = await cookbookEntries(cookbook.dir).catch((error: unknown) => {
    throw new GalleyError("FILE_NOT_FOUND", `cookbook ${cookbook.name}: cannot read ${cookbook.dir}`, {
      hint: "run `galley cookbooks install` to fetch the locked cookbooks",
      cause: error,
    });
  });
  const links = new Set(entries.filter((e) => e.kind === "symlink").map((e) => folded(e.path)));
  const members: Member[] = [];
  const found: DigestEntry[] = [];
  for (const entry of entries) {
    const full = path.join(cookbook.dir, entry.path);
    const data = entry.kind === "symlink" ? Buffer.from(await fs.readlink(full)) : await fs.readFile(full);
    if (entry.kind === "symlink" && !linkInside(entry.path, data.toString(), (p) => links.has(folded(p)))) {
      throw new GalleyError(
        "BUNDLE_INVALID",
        `cookbook ${cookbook.name}: ${full} is a symlink to ${data}, outside the cookbook`,
        {
          hint: "a bundle carries only the cookbook's own files: replace the link with a copy of its target",
        },
      );
    }
    found.push({ ...entry, sha256: sha256(data) });
    members.push({ path: `${COOKBOOKS}/${cookbook.name}/${entry.path}`, kind: entry.kind, data });
  }
  const digest = digestOf(found);
  if (digest !== cookbook.sha256) {
    throw new GalleyError(
      "LOCK_INVALID",
      `cookbooks.lock is stale: cookbook ${cookbook.name} (${cookbook.dir}) changed since it was locked (locked sha256 ${cookbook.sha256.slice(0, 12)}…, now ${digest.slice(0, 12)}…)`,
      { hint: "galley cookbooks install re-locks it (review the change first: the lock is what runs)" },
    );
  }
  const metadata = await loadCookbook(cookbook.dir);
  if (metadata?.name !== cookbook.name || metadata.version !== cookbook.version) {
    throw new GalleyError(
      "LOCK_INVALID",
      `cookbook ${cookbook.name}: ${path.join(cookbook.dir, "cookbook.yaml")} says ${metadata ? `${metadata.name} ${metadata.version}` : "nothing"}, the lock pins ${cookbook.name} ${cookbook.version}`,
      { hint: "run `galley cookbooks install` to re-lock" },
    );
  }
  return members;
}

/**
 * Whether a symlink at `link` (relative to its cookbook) pointing at `target` stays inside the cookbook.
 * Going through another link as a folder is refused: where it leads is not known from the path alone.
 */
function linkInside(link: string, target: string, isLink: (relative: string) => boolean): boolean {
  if (target === "" || target.startsWith("/") || target.includes("\0")) return false;
  const parts = link.split("/").slice(0, -1);
  const steps = target.split("/").filter((s) => s !== "" && s !== ".");
  for (const [i, step] of steps.entries()) {
    if (step === "..") {
      if (parts.pop() === undefined) return false;
      continue;
    }
    parts.push(step);
    if (i < steps.length - 1 && isLink(parts.join("/"))) return false;
  }
  return true;
}

/** The tar of the members, sorted by path, gzipped: no directories, no owners, no times, normalized modes. */
async function pack(members: readonly Member[]): Promise<Buffer> {
  const blocks: Buffer[] = [];
  for (const member of [...members].sort((a, b) => compare(a.path, b.path))) blocks.push(...tarEntry(member));
  blocks.push(Buffer.alloc(1024)); // two zero blocks end a tar archive
  const archive = await gzip(Buffer.concat(blocks), GZIP);
  archive[9] = 0xff; // the gzip OS byte says "unknown": zlib would write the building platform's code
  return archive;
}

function tarEntry(member: Member): Buffer[] {
  const link = member.kind === "symlink" ? member.data.toString() : undefined;
  const block = Buffer.alloc(512);
  const needsPax = new Header({
    path: member.path,
    mode: modeOf(member.kind),
    uid: 0,
    gid: 0,
    size: link === undefined ? member.data.length : 0,
    mtime: EPOCH,
    type: link === undefined ? "File" : "SymbolicLink",
    linkpath: link ?? "",
    uname: "",
    gname: "",
    devmaj: 0,
    devmin: 0,
  }).encode(block);
  // a path too long for ustar, or not ASCII, goes in a pax record holding only the path and link
  const pax = needsPax
    ? [new Pax({ path: member.path, ...(link === undefined ? {} : { linkpath: link }) }).encode()]
    : [];
  if (link !== undefined) return [...pax, block];
  return [...pax, block, member.data, Buffer.alloc((512 - (member.data.length % 512)) % 512)];
}

function modeOf(kind: Member["kind"]): number {
  return kind === "symlink" ? 0o777 : kind === "executable" ? 0o755 : 0o644;
}

interface RawEntry {
  path: string;
  type: string;
  mode: number;
  linkpath?: string | undefined;
  data: Buffer;
}

/** Every entry of a gzipped tar, with its content, refusing anything malformed. */
async function unpack(archive: Buffer, file: string): Promise<RawEntry[]> {
  // cookbooks are small: a bundle that inflates past 1 GiB is refused rather than exhausting memory
  const tar = await gunzip(archive, { maxOutputLength: 2 ** 30 }).catch((error: unknown) => {
    throw invalid(file, `not a gzipped tar archive (${errorMessage(error)})`);
  });
  // the tar parser costs ~20 ms to load; only opening a bundle needs it
  const { Parser } = await import("tar/parse");
  return new Promise((resolve, reject) => {
    const entries: RawEntry[] = [];
    const parser = new Parser({
      strict: true,
      onReadEntry: (entry) => {
        const chunks: Buffer[] = [];
        entry.on("data", (chunk: Buffer) => chunks.push(chunk));
        entry.on("end", () =>
          entries.push({
            path: entry.path,
            type: entry.type,
            mode: entry.mode ?? 0,
            linkpath: entry.linkpath,
            data: Buffer.concat(chunks),
          }),
        );
      },
    });
    // the parser skips entry types it does not know: a bundle never holds them
    parser.on("ignoredEntry", ({ path, type }: RawEntry) =>
      entries.push({ path, type, mode: 0, data: Buffer.alloc(0) }),
    );
    parser.on("error", (error: unknown) => reject(invalid(file, `unreadable tar (${errorMessage(error)})`)));
    parser.on("end", () => resolve(entries));
    parser.end(tar);
  });
}

/** The entries as members, refusing any that could write outside the bundle or is not a file or link. */
function checkMembers(entries: readonly RawEntry[], file: string): Member[] {
  const members = new Map<string, Member>();
  for (const entry of entries) {
    const problem = entryProblem(entry, members);
    if (problem) throw invalid(file, `entry ${JSON.stringify(entry.path)} ${problem}`);
    const kind = entry.type === "SymbolicLink" ? "symlink" : entry.mode & 0o111 ? "executable" : "file";
    const data = kind === "symlink" ? Buffer.from(entry.linkpath ?? "") : entry.data;
    members.set(entry.path, { path: entry.path, kind, data });
  }
  // compared case- and normalization-folded: on macOS, `X` and `x/evil` are the same folder
  const links = new Set([...members.values()].filter((m) => m.kind === "symlink").map((m) => folded(m.path)));
  const taken = new Set([...members.keys()].map(folded));
  for (const member of members.values()) {
    const parts = member.path.split("/");
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join("/");
      if (taken.has(folded(parent)))
        throw invalid(file, `entry ${member.path} lies inside ${parent}, which is not a folder`);
    }
    const cookbook = `${parts.slice(0, 2).join("/")}/`;
    const inside = (p: string) => links.has(folded(cookbook + p));
    if (
      member.kind === "symlink" &&
      !linkInside(member.path.slice(cookbook.length), member.data.toString(), inside)
    ) {
      throw invalid(file, `entry ${member.path} is a symlink to ${member.data}, outside its cookbook`);
    }
  }
  for (const required of [MANIFEST, LOCK]) {
    if (!members.has(required)) throw invalid(file, `it has no ${required}`);
  }
  return [...members.values()].sort((a, b) => compare(a.path, b.path));
}

function entryProblem(entry: RawEntry, seen: ReadonlyMap<string, Member>): string | undefined {
  if (!["File", "OldFile", "SymbolicLink"].includes(entry.type)) {
    return `is a ${entry.type} entry: a bundle holds only files and symlinks`;
  }
  const parts = entry.path.split("/");
  if (
    entry.path.startsWith("/") ||
    parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\0"))
  ) {
    return "is not a plain relative path: it could escape the bundle";
  }
  const topLevel = entry.path === MANIFEST || entry.path === LOCK;
  if (topLevel ? entry.type === "SymbolicLink" : parts[0] !== COOKBOOKS || parts.length < 3) {
    return "is not part of the bundle layout (bundle.json, cookbooks.lock, cookbooks/<name>/…)";
  }
  if (seen.has(entry.path)) return "appears twice";
  return undefined;
}

function readManifest(members: readonly Member[], file: string): BundleManifest {
  let json: unknown;
  try {
    json = JSON.parse(members.find((m) => m.path === MANIFEST)!.data.toString());
  } catch (error) {
    throw invalid(file, `bundle.json is not JSON (${errorMessage(error)})`);
  }
  const result = v.safeParse(manifestSchema, json);
  if (!result.success) {
    const issue = result.issues[0];
    const where = v.getDotPath(issue) ?? "root";
    throw invalid(file, `bundle.json is not a format 1 manifest (${where}: ${issue.message})`);
  }
  return result.output;
}

/** Checks that the archive holds exactly the manifest's cookbooks, each with its digest, as the lock pins. */
function checkCookbooks(
  members: readonly Member[],
  manifest: BundleManifest,
  lockText: string,
  file: string,
) {
  const lock = parseLock(`${file}: ${LOCK}`, lockText, "BUNDLE_INVALID", invalidHint);
  const mismatch = lockMismatch(manifest.cookbooks, lock);
  if (mismatch) throw invalid(file, mismatch);
  const names = new Set(manifest.cookbooks.map((c) => c.name));
  const stray = members.find((m) => m.path.startsWith(`${COOKBOOKS}/`) && !names.has(m.path.split("/")[1]!));
  if (stray) throw invalid(file, `entry ${stray.path} belongs to no cookbook of bundle.json`);
  for (const cookbook of manifest.cookbooks) {
    const prefix = `${COOKBOOKS}/${cookbook.name}/`;
    const entries = members
      .filter((m) => m.path.startsWith(prefix))
      .map((m) => ({ path: m.path.slice(prefix.length), kind: m.kind, sha256: sha256(m.data) }));
    if (digestOf(entries) !== cookbook.sha256) {
      throw invalid(file, `cookbook ${cookbook.name} does not match the sha256 in bundle.json and the lock`);
    }
    checkMetadata(members, cookbook, lock.cookbooks[cookbook.name]!.depends, file);
    const missing = Object.keys(lock.cookbooks[cookbook.name]!.depends).find((d) => !(d in lock.cookbooks));
    if (missing)
      throw invalid(file, `cookbook ${cookbook.name} depends on ${missing}, which is not in the bundle`);
  }
}

/** A cookbook's cookbook.yaml must say the name, version and depends that bundle.json and the lock record. */
function checkMetadata(
  members: readonly Member[],
  cookbook: BundleManifest["cookbooks"][number],
  lockedDepends: Record<string, string>,
  file: string,
) {
  const where = `${COOKBOOKS}/${cookbook.name}/cookbook.yaml`;
  const member = members.find((m) => m.path === where && m.kind !== "symlink");
  if (!member) throw invalid(file, `cookbook ${cookbook.name} has no ${where}`);
  const metadata = parseCookbookMetadata(`${file}: ${where}`, member.data.toString(), "BUNDLE_INVALID");
  const sorted = (r: Record<string, string>) =>
    JSON.stringify(Object.entries(r).sort(([a], [b]) => compare(a, b)));
  const difference =
    metadata.name !== cookbook.name
      ? `says name: ${metadata.name}`
      : metadata.version !== cookbook.version
        ? `says version ${metadata.version}, bundle.json and the lock ${cookbook.version}`
        : sorted(metadata.depends) !== sorted(lockedDepends)
          ? `depends on ${sorted(metadata.depends)}, the lock records ${sorted(lockedDepends)}`
          : undefined;
  if (difference) throw invalid(file, `${where} ${difference}`);
}

/**
 * Extracts into a fresh temporary folder beside `dir`, then renames it into place. An existing `dir`
 * is kept when it matches (another process extracted it meanwhile), else moved aside and replaced.
 */
async function extract(members: readonly Member[], dir: string): Promise<void> {
  await fs.mkdir(path.dirname(dir), { recursive: true });
  const temp = await fs.mkdtemp(path.join(path.dirname(dir), `.tmp-${path.basename(dir).slice(0, 12)}-`));
  const stale = `${temp}.stale`;
  const renamed = (from: string, to: string) =>
    fs.rename(from, to).then(
      () => true,
      () => false,
    );
  try {
    await writeMembers(temp, members);
    if (await renamed(temp, dir)) return;
    if ((await treeProblem(dir, members)) === undefined) return;
    // a rename cannot replace a non-empty folder: the modified one moves aside first
    await renamed(dir, stale);
    await renamed(temp, dir);
  } finally {
    await fs.rm(temp, { recursive: true, force: true });
    await fs.rm(stale, { recursive: true, force: true });
  }
}

/** Writes the members under `root` (a fresh folder) with normalized modes, whatever the umask. */
async function writeMembers(root: string, members: readonly Member[]): Promise<void> {
  const folders = new Set<string>([root]);
  for (const member of members) {
    const full = path.join(root, ...member.path.split("/"));
    for (let d = path.dirname(full); d !== root; d = path.dirname(d)) folders.add(d);
    await fs.mkdir(path.dirname(full), { recursive: true });
    if (member.kind === "symlink") await fs.symlink(member.data.toString(), full);
    else {
      await fs.writeFile(full, member.data, { flag: "wx", mode: modeOf(member.kind) });
      await fs.chmod(full, modeOf(member.kind));
    }
  }
  for (const folder of folders) await fs.chmod(folder, 0o755);
}

/** The first difference between the folder and the members (modes, links, contents, extra files), if any. */
async function treeProblem(dir: string, members: readonly Member[]): Promise<string | undefined> {
  const expected = new Map<string, string>();
  for (const member of members) {
    const parts = member.path.split("/");
    for (let i = 1; i < parts.length; i++) expected.set(parts.slice(0, i).join("/"), "folder");
    expected.set(member.path, describe(member.kind, member.data));
  }
  const found = new Map<string, string>();
  const walk = async (relative: string): Promise<void> => {
    for (const name of await fs.readdir(path.join(dir, relative))) {
      const rel = relative ? `${relative}/${name}` : name;
      const full = path.join(dir, rel);
      const stat = await fs.lstat(full);
      if (stat.isDirectory()) {
        found.set(rel, "folder");
        await walk(rel);
      } else if (stat.isSymbolicLink())
        found.set(rel, describe("symlink", Buffer.from(await fs.readlink(full))));
      else if (stat.isFile() && (stat.mode & 0o7777) === (stat.mode & 0o111 ? 0o755 : 0o644)) {
        found.set(rel, describe(stat.mode & 0o111 ? "executable" : "file", await fs.readFile(full)));
      } else found.set(rel, `other (mode ${(stat.mode & 0o7777).toString(8)})`);
    }
  };
  try {
    await walk("");
  } catch {
    return `${dir} cannot be read`;
  }
  for (const [rel, what] of expected) {
    if (found.get(rel) !== what) return found.has(rel) ? `${rel} was changed` : `${rel} is missing`;
  }
  const extra = [...found.keys()].find((rel) => !expected.has(rel));
  return extra === undefined ? undefined : `${extra} is not part of the bundle`;
}

function describe(kind: Member["kind"], data: Buffer): string {
  return kind === "symlink" ? `symlink to ${data}` : `${kind} ${sha256(data)}`;
}

async function writeAtomic(file: string, data: Buffer): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, data, { mode: 0o644 });
}

function readFailure(file: string, error: unknown): GalleyError {
  if ((error as NodeJS.ErrnoException).code === "ENOENT") {
    return new GalleyError("FILE_NOT_FOUND", `bundle ${file} does not exist`, {
      hint: "check the path; `galley bundle` prints the file it writes",
    });
  }
  return invalid(file, `cannot be read (${errorMessage(error)})`);
}

const invalidHint =
  "the bundle is damaged or was altered: make it again with `galley bundle`, or fetch an intact copy";

function invalid(file: string, problem: string): GalleyError {
  return new GalleyError("BUNDLE_INVALID", `bundle ${file}: ${problem}`, { hint: invalidHint });
}

function folded(p: string): string {
  return p.normalize("NFC").toLowerCase();
}

function sha256(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
