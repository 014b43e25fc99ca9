import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import { type Change, defineResourceType, described, optional } from "../core/resource.ts";
import { run } from "../core/fsops.ts";
import { accountNameSchema, readAccounts } from "./user.ts";

const schema = v.strictObject({
  groupName: described(accountNameSchema, "the group's name (defaults to the resource name)"),
  gid: v.optional(
    described(
      v.pipe(v.number(), v.integer(), v.minValue(0)),
      "numeric group id; omit to let groupadd choose one",
    ),
  ),
  members: v.optional(
    described(
      v.array(accountNameSchema),
      "users listed in the group: the exact list, or only added with append; each user must exist",
    ),
  ),
  append: v.optional(described(v.boolean(), "only add `members`, never remove other members"), false),
  system: v.optional(
    described(v.boolean(), "create a system group (gid below 1000); only used at creation"),
    false,
  ),
});

type Props = v.InferOutput<typeof schema>;

/** A group as /etc/group describes it. */
export interface GroupState {
  gid: number;
  /** members listed in /etc/group, sorted (users whose primary group it is are not listed there) */
  members: string[];
}

/** A local group: its id and its listed members. */
export const group = defineResourceType<typeof schema, GroupState>({
  type: "group",
  description: "A local group (groupadd/groupmod/gpasswd): its id and its members.",
  actions: ["create", "remove"],
  schema,
  nameProperty: "groupName",

  key: (props) => props.groupName,

  // no autoRequires for members: users require their groups (user.groups), so the reverse edge would be a cycle

  async read(host, props) {
    const entry = (await readAccounts(host)).groups.get(props.groupName);
    return entry ? { gid: entry.gid, members: [...entry.members].sort() } : undefined;
  },

  diff(current, desired, action) {
    if (action === "remove") return current ? [{ property: "ensure", from: "present", to: "absent" }] : [];
    const changes: Change[] = current ? [] : [{ property: "ensure", from: "absent", to: "present" }];
    if (desired.gid !== undefined && current?.gid !== desired.gid) {
      changes.push({ property: "gid", ...optional("from", current?.gid), to: desired.gid });
    }
    const members = wantedMembers(current, desired);
    if (members !== undefined && members.join(",") !== (current?.members ?? []).join(",")) {
      changes.push({ property: "members", ...optional("from", current?.members), to: members });
    }
    return changes;
  },

  async apply(host, desired, action, current) {
    const name = desired.groupName;
    const accounts = await readAccounts(host);
    if (action === "remove") {
      if (!current) return;
      const owners = [...accounts.users]
        .filter(([, entry]) => entry.gid === current.gid)
        .map(([user]) => user);
      if (owners.length > 0) {
        throw new GalleyError("APPLY_FAILED", `group[${name}] is the primary group of ${owners.join(", ")}`, {
          hint: "remove those users first, or give them another primary group (user gid)",
        });
      }
      await run(host, ["groupdel", name]);
      return;
    }
    const members = wantedMembers(current, desired);
    const missing = (members ?? []).filter((member) => !accounts.users.has(member));
    if (missing.length > 0) {
      throw new GalleyError("APPLY_FAILED", `group[${name}]: no user ${missing.join(", ")} on ${host.name}`, {
        hint: "declare those users before this group (members do not order them), or list the group in their `groups`",
      });
    }
    if (!current) {
      const gid = desired.gid === undefined ? [] : ["-g", String(desired.gid)];
      await run(host, ["groupadd", ...(desired.system ? ["-r"] : []), ...gid, name]);
    } else if (desired.gid !== undefined && current.gid !== desired.gid) {
      await run(host, ["groupmod", "-g", String(desired.gid), name]);
    }
    if (members === undefined || members.join(",") === (current?.members ?? []).join(",")) return;
    if (desired.append) {
      for (const member of members.filter((m) => !current?.members.includes(m))) {
        await run(host, ["gpasswd", "-a", member, name]);
      }
    } else {
      await run(host, ["gpasswd", "-M", members.join(","), name]);
    }
  },
});

/** The sorted member list wanted after apply; undefined when members are not managed. */
function wantedMembers(current: GroupState | undefined, desired: Props): string[] | undefined {
  if (desired.members === undefined) return undefined;
  const kept = desired.append ? (current?.members ?? []) : [];
  return [...new Set([...kept, ...desired.members])].sort();
}
