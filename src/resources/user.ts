import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { redacted } from "../core/report.ts";
import { type Change, defineResourceType, described, optional, pathSchema } from "../core/resource.ts";
import { type Accounts, parseAccounts } from "../hosts/accounts.ts";
import { run } from "../core/fsops.ts";

/** A user or group name as Debian's shadow tools accept it: at most 32 characters, not all digits. */
export const accountNameSchema = v.pipe(
  v.string(),
  v.maxLength(32),
  v.regex(
    /^[A-Za-z0-9_.][A-Za-z0-9_.-]*\$?$/,
    "letters, digits, '_', '.', '-' (not first), an optional final '$'",
  ),
  v.check(
    (name) => !/^\d+$/.test(name) && name !== "." && name !== "..",
    "must not be all digits, '.' or '..'",
  ),
);

const fieldText = (what: string) =>
  v.pipe(
    v.string(),
    v.regex(/^[^:\n]*$/, `${what} must not contain ':' or a line break (it is a field of /etc/passwd)`),
  );

const id = v.pipe(v.number(), v.integer(), v.minValue(0));

const schema = v.strictObject({
  username: described(accountNameSchema, "the login name (defaults to the resource name)"),
  uid: v.optional(described(id, "numeric user id; omit to let useradd choose one")),
  gid: v.optional(
    described(
      v.union([accountNameSchema, id]),
      "primary group, by name or number; it must exist (omit at creation: a group named like the user)",
    ),
  ),
  groups: v.optional(
    described(
      v.array(accountNameSchema),
      "supplementary groups: the exact list (others are left), or only added with appendGroups",
    ),
  ),
  appendGroups: v.optional(
    described(v.boolean(), "only add the user to `groups`, never remove it from other groups"),
    false,
  ),
  home: v.optional(pathSchema("home directory")),
  shell: v.optional(pathSchema("login shell, e.g. /bin/bash or /usr/sbin/nologin")),
  comment: v.optional(described(fieldText("comment"), "the GECOS field: usually the full name")),
  system: v.optional(
    described(v.boolean(), "create a system account (uid below 1000); only used at creation"),
    false,
  ),
  manageHome: v.optional(
    described(
      v.boolean(),
      "create the home directory at creation, move it when `home` changes, delete it with action remove",
    ),
    false,
  ),
  password: v.optional(
    described(
      v.pipe(
        v.string(),
        v.regex(
          /^(\$[^:\n]+|[!*][^:\n]*|[./0-9A-Za-z]{13})$/,
          "an already hashed password (e.g. from `openssl passwd -6`), never the plain text",
        ),
      ),
      "the password hash for /etc/shadow (sensitive: never shown); a locked account (action lock) stays locked",
    ),
  ),
});

type Props = v.InferOutput<typeof schema>;

/** What /etc/shadow says about the password, without ever keeping the hash. */
interface ShadowState {
  locked: boolean;
  /** a hash is set behind the lock marker: unlocking would not leave a passwordless account */
  hasPassword: boolean;
  /** whether the hash equals the desired one (ignoring a lock marker); undefined when none is desired */
  passwordMatches: boolean | undefined;
}

/** A user as /etc/passwd, /etc/group and /etc/shadow describe it. */
export interface UserState {
  uid: number;
  gid: number;
  /** the primary group's name, or the gid as text when no group has it */
  group: string;
  /** supplementary groups, sorted */
  groups: string[];
  home: string;
  shell: string;
  comment: string;
  /** undefined when /etc/shadow could not be read (not root) */
  shadow: ShadowState | undefined;
}

/** A local user account: ids, groups, home, shell, password hash, lock. */
export const user = defineResourceType<typeof schema, UserState>({
  type: "user",
  description:
    "A local user account (useradd/usermod/userdel): ids, groups, home, shell, password hash and lock.",
  actions: ["create", "remove", "lock", "unlock"],
  schema,
  nameProperty: "username",
  sensitiveProperties: ["password"],

  key: (props) => props.username,

  // users require their groups; a group's members require nothing (as in Chef and Puppet), so no cycle
  autoRequires: (props) => [
    ...(typeof props.gid === "string" ? [{ group: props.gid }] : []),
    ...(props.groups ?? []).map((group) => ({ group })),
  ],

  async read(host, props) {
    const accounts = await readAccounts(host);
    const entry = accounts.users.get(props.username);
    if (!entry) return undefined;
    const groups = [...accounts.groups]
      .filter(([, group]) => group.members.includes(props.username))
      .map(([name]) => name)
      .sort();
    return {
      uid: entry.uid,
      gid: entry.gid,
      group: accounts.groupById.get(entry.gid) ?? String(entry.gid),
      groups,
      home: entry.home,
      shell: entry.shell,
      comment: entry.comment,
      shadow: await readShadow(host, props),
    };
  },

  diff(current, desired, action) {
    switch (action) {
      case "remove":
        return current ? [{ property: "ensure", from: "present", to: "absent" }] : [];
      case "lock":
      case "unlock": {
        const locked = action === "lock";
        if (current?.shadow?.locked === locked) return [];
        return [
          {
            property: "locked",
            from: current ? (current.shadow?.locked ?? "unknown") : "absent",
            to: locked,
          },
        ];
      }
      default:
        return [
          ...(current ? [] : [{ property: "ensure", from: "absent", to: "present" }]),
          ...diffFields(current, desired),
        ];
    }
  },

  async apply(host, desired, action, current) {
    const name = desired.username;
    if (action === "remove") {
      if (current) await run(host, ["userdel", ...(desired.manageHome ? ["-r"] : []), name]);
      return;
    }
    if (action === "lock" || action === "unlock") {
      if (!current) {
        throw new GalleyError("APPLY_FAILED", `user[${name}]: cannot ${action} a user that does not exist`, {
          hint: `declare user("${name}") with action create before this resource`,
        });
      }
      if (action === "unlock" && current.shadow && !current.shadow.hasPassword) {
        throw new GalleyError(
          "APPLY_FAILED",
          `user[${name}] has no password: unlocking would leave no way to log in`,
          {
            hint: "give it a password hash (`password` with action create) before unlocking it",
          },
        );
      }
      await run(host, ["usermod", action === "lock" ? "-L" : "-U", name]);
      return;
    }
    await checkGroupsExist(host, desired);
    const changed = new Set(diffFields(current, desired).map((change) => change.property));
    if (!current) {
      const home = desired.manageHome ? "-m" : "-M";
      await run(host, [
        "useradd",
        ...(desired.system ? ["-r"] : []),
        home,
        ...userFlags(desired, changed, true),
        name,
      ]);
    } else {
      const flags = userFlags(desired, changed, false);
      if (flags.length > 0) await run(host, ["usermod", ...flags, name]);
    }
    if (changed.has("password")) {
      // a locked account keeps its lock; the hash goes through stdin, never on a command line
      const keepLock =
        current?.shadow?.locked && current.shadow.hasPassword && !desired.password!.startsWith("!");
      await run(host, ["chpasswd", "-e"], { input: `${name}:${keepLock ? "!" : ""}${desired.password}\n` });
    }
  },
});

/** The fields of create that differ; every given field when the user does not exist yet. */
function diffFields(current: UserState | undefined, desired: Props): Change[] {
  const changes: Change[] = [];
  const field = (property: string, from: unknown, to: unknown) => {
    if (to !== undefined && (current === undefined || from !== to))
      changes.push({ property, ...optional("from", from), to });
  };
  field("uid", current?.uid, desired.uid);
  field("gid", typeof desired.gid === "number" ? current?.gid : current?.group, desired.gid);
  if (desired.groups !== undefined) {
    const have = current?.groups ?? [];
    const wanted = [...new Set([...(desired.appendGroups ? have : []), ...desired.groups])].sort();
    if (current === undefined || wanted.join(",") !== have.join(",")) {
      changes.push({ property: "groups", ...optional("from", current?.groups), to: wanted });
    }
  }
  field("home", current?.home, desired.home);
  field("shell", current?.shell, desired.shell);
  field("comment", current?.comment, desired.comment);
  if (desired.password !== undefined && current?.shadow?.passwordMatches !== true) {
    changes.push({ property: "password", ...(current ? { from: redacted } : {}), to: redacted });
  }
  return changes;
}

/** useradd/usermod options for the changed fields (the password goes through chpasswd). */
function userFlags(desired: Props, changed: Set<string>, creating: boolean): string[] {
  const flags: string[] = [];
  const groups = desired.groups ?? [];
  if (changed.has("uid")) flags.push("-u", String(desired.uid));
  if (changed.has("gid")) flags.push("-g", String(desired.gid));
  if (changed.has("groups") && !(creating && groups.length === 0)) {
    flags.push(...(desired.appendGroups && !creating ? ["-a"] : []), "-G", groups.join(","));
  }
  if (changed.has("home"))
    flags.push("-d", desired.home!, ...(desired.manageHome && !creating ? ["-m"] : []));
  if (changed.has("shell")) flags.push("-s", desired.shell!);
  if (changed.has("comment")) flags.push("-c", desired.comment!);
  return flags;
}

/** The shadow tools fail with a bare message on a missing group: name it and say what to do. */
async function checkGroupsExist(host: Host, desired: Props): Promise<void> {
  const accounts = await readAccounts(host);
  const missing = [
    ...(typeof desired.gid === "number" && !accounts.groupById.has(desired.gid) ? [String(desired.gid)] : []),
    ...(typeof desired.gid === "string" && !accounts.groups.has(desired.gid) ? [desired.gid] : []),
    ...(desired.groups ?? []).filter((group) => !accounts.groups.has(group)),
  ];
  if (missing.length > 0) {
    throw new GalleyError(
      "APPLY_FAILED",
      `user[${desired.username}]: no group ${missing.join(", ")} on ${host.name}`,
      {
        hint: `declare ${missing.map((group) => `group("${group}")`).join(", ")} in the recipe, or fix the name`,
      },
    );
  }
}

/** /etc/passwd and /etc/group of a host, read as files so that it works the same over SSH. */
export async function readAccounts(host: Host): Promise<Accounts> {
  const text = async (file: string) =>
    new TextDecoder().decode((await host.readFile(file)) ?? new Uint8Array());
  return parseAccounts(await text("/etc/passwd"), await text("/etc/group"));
}

/**
 * The user's /etc/shadow entry reduced to what diff needs. Unreadable (not root) is an error only
 * when a password is managed; otherwise lock state is just unknown.
 */
async function readShadow(host: Host, props: Props): Promise<ShadowState | undefined> {
  let data: Uint8Array | undefined;
  try {
    data = await host.readFile("/etc/shadow");
  } catch (error) {
    if (props.password === undefined) return undefined;
    throw new GalleyError(
      "APPLY_FAILED",
      `user[${props.username}]: cannot read /etc/shadow on ${host.name}`,
      {
        hint: "run galley as root (or through sudo) to manage passwords",
        cause: error,
      },
    );
  }
  const line = new TextDecoder()
    .decode(data ?? new Uint8Array())
    .split("\n")
    .find((entry) => entry.startsWith(`${props.username}:`));
  if (line === undefined) return undefined;
  const hash = line.split(":")[1] ?? "";
  const bare = hash.replace(/^!+/, "");
  const desired = props.password;
  return {
    locked: hash.startsWith("!"),
    hasPassword: bare !== "",
    passwordMatches:
      desired === undefined ? undefined : hash === desired || (!desired.startsWith("!") && bare === desired),
  };
}
