import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { ExecResult, Host } from "../core/host.ts";
import { type Change, defineResourceType, described, optional, pathSchema } from "../core/resource.ts";
import { list, mkdir, remove, run } from "../core/fsops.ts";

const schema = v.strictObject({
  destination: pathSchema("absolute path of the checkout (defaults to the resource name)"),
  repository: described(
    v.pipe(v.string(), v.regex(/^[^-\s]/, "a URL or path (not starting with - or a space)")),
    "the repository to clone: a URL (https://, ssh://, git@host:path) or a local path",
  ),
  revision: v.optional(
    described(
      v.pipe(
        v.string(),
        v.regex(/^[^-\s][^\s]*$/, "a branch, tag or commit (no spaces, not starting with -)"),
      ),
      "branch, tag, full or short commit, or HEAD (the remote's default branch). A branch is checked out as a local branch of the same name tracking the remote one; a tag, a commit or HEAD as a detached HEAD (as Chef does)",
    ),
    "HEAD",
  ),
  user: v.optional(
    described(v.string(), "owner of the checkout; git runs as this user (its keys and credentials)"),
  ),
  group: v.optional(described(v.string(), "group of the checkout's files")),
  depth: v.optional(
    described(
      v.pipe(v.number(), v.integer(), v.gtValue(0)),
      "shallow clone and fetch with this many commits of history",
    ),
  ),
  enableSubmodules: v.optional(
    described(v.boolean(), "initialize and update submodules, recursively, after each move"),
    false,
  ),
  remote: v.optional(
    described(v.pipe(v.string(), v.regex(/^\w[\w.-]*$/, "a remote name like origin")), "name of the remote"),
    "origin",
  ),
});

type Props = v.InferOutput<typeof schema>;

/** What read finds at the destination and in the repository. */
export interface GitState {
  /** what is at the destination: absent, a checkout, an empty directory, or something else */
  found: "absent" | "checkout" | "empty" | "other";
  head: string | undefined;
  remoteUrl: string | undefined;
  owner: string | undefined;
  group: string | undefined;
  /** the full commit the revision names, when it could be resolved without fetching */
  wanted: string | undefined;
}

/** A git checkout at a branch, tag or commit. */
export const git = defineResourceType<typeof schema, GitState>({
  type: "git",
  description:
    "A git checkout at a branch, tag or commit. sync (default) clones when missing, else fetches and moves to the revision when its commit differs, discarding local changes to tracked files (untracked files stay); checkout only clones when missing.",
  actions: ["sync", "checkout"],
  schema,
  nameProperty: "destination",

  key: (props) => props.destination,

  autoRequires: (props) => [
    { path: props.destination },
    ...(props.user ? [{ user: props.user }] : []),
    ...(props.group ? [{ group: props.group }] : []),
  ],

  async read(host, props) {
    const stat = await host.stat(props.destination);
    const found = !stat
      ? "absent"
      : (await host.stat(`${props.destination}/.git`))
        ? "checkout"
        : stat.type === "directory" && (await list(host, props.destination)).length === 0
          ? "empty"
          : "other";
    const inCheckout = found === "checkout";
    return {
      found,
      head: inCheckout ? await revParse(host, props, "HEAD") : undefined,
      remoteUrl: inCheckout
        ? await gitOutput(host, props, ["config", "--get", `remote.${props.remote}.url`])
        : undefined,
      owner: stat?.owner,
      group: stat?.group,
      wanted:
        (await resolveRemote(host, props))?.sha ?? (inCheckout ? await resolveShort(host, props) : undefined),
    };
  },

  diff(current, desired, action) {
    const wanted = current?.wanted ? short(current.wanted) : desired.revision;
    if (current?.found !== "checkout") {
      const from = current?.found === "other" ? "not a git checkout" : (current?.found ?? "absent");
      return [
        { property: "ensure", from, to: "clone" },
        { property: "revision", to: wanted },
      ];
    }
    if (action === "checkout") return [];
    const changes: Change[] = [];
    if (current.remoteUrl !== desired.repository) {
      changes.push({ property: "repository", from: current.remoteUrl, to: desired.repository });
    }
    if (!current.wanted || current.head !== current.wanted) {
      changes.push({ property: "revision", from: current.head && short(current.head), to: wanted });
    }
    if (desired.user !== undefined && current.owner !== desired.user) {
      changes.push({ property: "owner", from: current.owner, to: desired.user });
    }
    if (desired.group !== undefined && current.group !== desired.group) {
      changes.push({ property: "group", from: current.group, to: desired.group });
    }
    return changes;
  },

  async apply(host, desired, action, current) {
    const dest = desired.destination;
    const cloning = current?.found !== "checkout";
    if (current?.found === "other") {
      throw new GalleyError("APPLY_FAILED", `git[${dest}]: ${dest} exists and is not a git checkout`, {
        hint: "remove it (a directory resource with action delete) or choose another destination",
      });
    }
    if (cloning) {
      // create it owned by the user, so that git running as that user can clone into it
      if (current?.found !== "empty" && desired.user !== undefined) {
        await mkdir(host, dest, {
          recursive: true,
          owner: desired.user,
          ...optional("group", desired.group),
        });
      }
      const shallow = desired.depth ? ["--depth", String(desired.depth), "--no-single-branch"] : [];
      await mustGit(host, desired, [
        "clone",
        "--no-checkout",
        "--origin",
        desired.remote,
        ...shallow,
        "--",
        desired.repository,
        dest,
      ]);
    } else {
      if (differs(desired.user, current.owner) || differs(desired.group, current.group)) {
        await chownTree(host, desired);
      }
      await setRemote(host, desired, current.remoteUrl);
    }
    if (action === "checkout" && !cloning) return;
    try {
      await moveTo(host, desired);
    } catch (error) {
      // a clone that never reached its revision would pass for a checkout at the next run
      if (cloning) await undoClone(host, dest, current?.found === "empty");
      throw error;
    }
    // files git wrote carry the user's primary group: give the tree the wanted group
    if (desired.group !== undefined) await chownTree(host, desired);
  },
});

/** Fetches and moves the checkout to the revision, discarding local changes to tracked files. */
async function moveTo(host: Host, desired: Props): Promise<void> {
  const dest = desired.destination;
  const depth = desired.depth ? [`--depth=${desired.depth}`] : [];
  await mustGit(host, desired, ["-C", dest, "fetch", "--prune", ...depth, desired.remote]);
  await mustGit(host, desired, ["-C", dest, "fetch", "--tags", ...depth, desired.remote]);
  const target = await resolveForCheckout(host, desired);
  if (target.branch === undefined) {
    await mustGit(host, desired, ["-C", dest, "checkout", "--force", "--detach", target.sha]);
  } else {
    await mustGit(host, desired, ["-C", dest, "checkout", "--force", "-B", target.branch, target.sha]);
    await mustGit(host, desired, [
      "-C",
      dest,
      "branch",
      `--set-upstream-to=${desired.remote}/${target.branch}`,
    ]);
  }
  if (desired.enableSubmodules) {
    await mustGit(host, desired, ["-C", dest, "submodule", "sync", "--recursive"]);
    await mustGit(host, desired, ["-C", dest, "submodule", "update", "--init", "--recursive", ...depth]);
  }
}

async function undoClone(host: Host, dest: string, keepDirectory: boolean): Promise<void> {
  if (!keepDirectory) return remove(host, dest, { recursive: true });
  for (const name of await list(host, dest)) await remove(host, `${dest}/${name}`, { recursive: true });
}

/** A revision resolved against the remote: the commit, and the branch name when it is a branch. */
interface RemoteRevision {
  sha: string;
  branch: string | undefined;
  ref: string;
}

const fullSha = /^([0-9a-f]{40}|[0-9a-f]{64})$/i;
const shortSha = /^[0-9a-f]{4,39}$/i;

/** Resolves the revision with `git ls-remote`, as Chef does: peeled tags first, then tags, branches, other refs. */
async function resolveRemote(host: Host, props: Props): Promise<RemoteRevision | undefined> {
  const revision = props.revision;
  if (fullSha.test(revision)) return { sha: revision.toLowerCase(), branch: undefined, ref: revision };
  const result = await exec(host, props, ["ls-remote", "--", props.repository, revision, `${revision}^{}`]);
  if (result.exitCode !== 0) return undefined;
  const refs = new Map<string, string>();
  for (const line of result.stdout.split("\n")) {
    const [sha, ref] = line.split("\t");
    if (sha && ref) refs.set(ref, sha);
  }
  if (revision === "HEAD") {
    return refs.has("HEAD") ? { sha: refs.get("HEAD")!, branch: undefined, ref: "HEAD" } : undefined;
  }
  const tag = revision.startsWith("refs/tags/") ? revision : `refs/tags/${revision}`;
  const head = revision.startsWith("refs/heads/") ? revision : `refs/heads/${revision}`;
  for (const [ref, branch] of [
    [`${tag}^{}`, undefined],
    [tag, undefined],
    [head, head.slice("refs/heads/".length)],
    [revision, undefined],
  ] as const) {
    const sha = refs.get(ref);
    if (sha) return { sha, branch, ref: ref.replace(/\^\{\}$/, "") };
  }
  return undefined;
}

/** A short commit can only be resolved in the checkout; unresolved (not fetched yet) is a change. */
function resolveShort(host: Host, props: Props): Promise<string | undefined> {
  return shortSha.test(props.revision)
    ? revParse(host, props, `${props.revision}^{commit}`)
    : Promise.resolve(undefined);
}

/** Resolves the revision after fetching; an unknown revision is the user's error. */
async function resolveForCheckout(
  host: Host,
  props: Props,
): Promise<{ sha: string; branch: string | undefined }> {
  const remote = await resolveRemote(host, props);
  if (remote) {
    if (!(await revParse(host, props, `${remote.sha}^{commit}`))) {
      // a commit no branch or tag reaches: ask for it by name (the server must allow it)
      const ref = fullSha.test(props.revision) ? remote.sha : remote.ref;
      await exec(host, props, ["-C", props.destination, "fetch", props.remote, ref]);
    }
    const sha = await revParse(host, props, `${remote.sha}^{commit}`);
    if (sha) return { sha, branch: remote.branch };
  } else if (shortSha.test(props.revision)) {
    const sha = await resolveShort(host, props);
    if (sha) return { sha, branch: undefined };
  }
  throw new GalleyError(
    "APPLY_FAILED",
    `git[${props.destination}]: revision '${props.revision}' not found in repository ${props.repository}`,
    {
      hint: "check the branch, tag or commit (names are case-sensitive) and that it was pushed to that repository",
    },
  );
}

async function setRemote(host: Host, props: Props, currentUrl: string | undefined): Promise<void> {
  if (currentUrl === props.repository) return;
  const args = currentUrl === undefined ? ["remote", "add"] : ["remote", "set-url"];
  await mustGit(host, props, ["-C", props.destination, ...args, props.remote, props.repository]);
}

/** Gives the whole checkout to the user and group (runs as Galley's user: root when ownership changes). */
async function chownTree(host: Host, props: Props): Promise<void> {
  if (props.user === undefined && props.group === undefined) return;
  const spec = `${props.user ?? ""}${props.group === undefined ? "" : `:${props.group}`}`;
  await run(host, ["chown", "-R", spec, "--", props.destination]);
}

async function revParse(host: Host, props: Props, rev: string): Promise<string | undefined> {
  return gitOutput(host, props, ["rev-parse", "--verify", "--quiet", rev]);
}

/**
 * The trimmed stdout of a read-only git command in the checkout, or undefined when it fails.
 * safe.directory: these plumbing commands run no repository-controlled code, and must read a
 * checkout still owned by someone else before apply hands it over.
 */
async function gitOutput(host: Host, props: Props, args: string[]): Promise<string | undefined> {
  const safe = ["-c", `safe.directory=${props.destination}`];
  const result = await exec(host, props, [...safe, "-C", props.destination, ...args]);
  return result.exitCode === 0 && result.stdout.trim() ? result.stdout.trim() : undefined;
}

/** Runs git as the checkout's user, never prompting for credentials. */
function exec(host: Host, props: Props, args: string[]): Promise<ExecResult> {
  return host.exec(["git", "-c", "advice.detachedHead=false", ...args], {
    env: { GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" },
    ...optional("user", props.user),
  });
}

async function mustGit(host: Host, props: Props, args: string[]): Promise<void> {
  const result = await exec(host, props, args);
  if (result.exitCode === 0) return;
  const output = (result.stderr.trim() || result.stdout.trim()).split("\n").slice(-10).join("\n");
  throw new GalleyError(
    "APPLY_FAILED",
    `git[${props.destination}]: git ${args.join(" ")} exited ${result.exitCode}${output ? `:\n${output}` : ""}`,
    {
      hint: `check that ${props.repository} is reachable${props.user ? ` by user ${props.user}` : ""} and the destination writable`,
    },
  );
}

function differs(wanted: string | undefined, actual: string | undefined): boolean {
  return wanted !== undefined && wanted !== actual;
}

function short(sha: string): string {
  return sha.slice(0, 7);
}
