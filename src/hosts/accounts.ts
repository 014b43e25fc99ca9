/** Parsed /etc/passwd and /etc/group, for turning names into ids and back. */
export interface Accounts {
  users: Map<string, { uid: number; gid: number; home: string; shell: string; comment: string }>;
  groups: Map<string, { gid: number; members: string[] }>;
  userById: Map<number, string>;
  groupById: Map<number, string>;
}

/** Parses the text of /etc/passwd and /etc/group. */
export function parseAccounts(passwd: string, group: string): Accounts {
  const accounts: Accounts = {
    users: new Map(),
    groups: new Map(),
    userById: new Map(),
    groupById: new Map(),
  };
  for (const line of passwd.split("\n")) {
    const [name, , uid, gid, comment, home, shell] = line.split(":");
    if (!name || uid === undefined || gid === undefined) continue;
    const entry = {
      uid: Number(uid),
      gid: Number(gid),
      home: home ?? "",
      shell: shell ?? "",
      comment: comment ?? "",
    };
    accounts.users.set(name, entry);
    if (!accounts.userById.has(entry.uid)) accounts.userById.set(entry.uid, name);
  }
  for (const line of group.split("\n")) {
    const [name, , gid, members] = line.split(":");
    if (!name || gid === undefined) continue;
    accounts.groups.set(name, {
      gid: Number(gid),
      members: members ? members.split(",").filter(Boolean) : [],
    });
    if (!accounts.groupById.has(Number(gid))) accounts.groupById.set(Number(gid), name);
  }
  return accounts;
}
