import * as v from "valibot";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { after, test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";
import { user } from "./user.ts";

const host = new LocalHost();
const skip = process.getuid?.() !== 0 && "needs root: creates and removes real users with useradd/userdel";
const suffix = `${process.pid.toString(36)}`;
const name = (tag: string) => `galley-t-u${tag}${suffix}`;
const users = ["a", "b", "c", "d", "e"].map(name);
const groups = ["g1", "g2"].map(name);
// fake hashes: chpasswd -e stores any crypt-looking string as is
const hash1 = "$6$galleytest$firstfirstfirstfirstfirstfirstfirstfirstfirstfirst";
const hash2 = "$6$galleytest$secondsecondsecondsecondsecondsecondsecondsecond";

after(async () => {
  if (skip) return;
  for (const u of users) await host.exec(["userdel", "-r", u]);
  for (const g of [...groups, ...users]) await host.exec(["groupdel", g]);
});

async function passwd(username: string): Promise<string[] | undefined> {
  const line = (await fs.readFile("/etc/passwd", "utf8"))
    .split("\n")
    .find((l) => l.startsWith(`${username}:`));
  return line?.split(":");
}

async function shadowHash(username: string): Promise<string | undefined> {
  const line = (await fs.readFile("/etc/shadow", "utf8"))
    .split("\n")
    .find((l) => l.startsWith(`${username}:`));
  return line?.split(":")[1];
}

async function memberOf(username: string, group: string): Promise<boolean> {
  const line = (await fs.readFile("/etc/group", "utf8")).split("\n").find((l) => l.startsWith(`${group}:`));
  return (line?.split(":")[3] ?? "").split(",").includes(username);
}

test("user: create with uid, shell, comment, home (managed), then changes nothing", { skip }, async () => {
  const home = path.join(await tempDir("galley-t-home-"), "a");
  const changes = await convergeTwice(host, user, {
    username: users[0],
    uid: 54321,
    shell: "/bin/bash",
    comment: "Galley Test",
    home,
    manageHome: true,
  });
  assert.deepEqual(
    changes.map((c) => c.property),
    ["ensure", "uid", "home", "shell", "comment"],
  );
  assert.deepEqual((await passwd(users[0]!))?.slice(2), ["54321", "54321", "Galley Test", home, "/bin/bash"]);
  assert.equal((await fs.stat(home)).uid, 54321);
});

test("user: drifted fields are put back, and the diff names them", { skip }, async () => {
  await host.exec(["useradd", "-M", "-s", "/bin/sh", "-c", "old", users[1]!]);
  const changes = await convergeTwice(host, user, { username: users[1], shell: "/bin/bash", comment: "new" });
  assert.deepEqual(changes, [
    { property: "shell", from: "/bin/sh", to: "/bin/bash" },
    { property: "comment", from: "old", to: "new" },
  ]);
  assert.deepEqual((await passwd(users[1]!))?.slice(4), ["new", "/home/" + users[1], "/bin/bash"]);
});

test("user: manageHome moves the home when it changes", { skip }, async () => {
  const base = await tempDir("galley-t-home-");
  await convergeTwice(host, user, { username: users[2], home: path.join(base, "old"), manageHome: true });
  await fs.writeFile(path.join(base, "old", "marker"), "x");
  const changes = await convergeTwice(host, user, {
    username: users[2],
    home: path.join(base, "new"),
    manageHome: true,
  });
  assert.deepEqual(changes, [{ property: "home", from: path.join(base, "old"), to: path.join(base, "new") }]);
  assert.equal(await fs.readFile(path.join(base, "new", "marker"), "utf8"), "x");
  await assert.rejects(fs.stat(path.join(base, "old")));
});

test("user: primary group and exact or appended supplementary groups", { skip }, async () => {
  const [g1, g2] = groups as [string, string];
  for (const g of groups) await host.exec(["groupadd", g]);
  const u = users[3]!;
  const created = await convergeTwice(host, user, { username: u, gid: g1, groups: [g1, g2] });
  assert.deepEqual(created.find((c) => c.property === "groups")?.to, [g1, g2].sort());
  assert.equal(await memberOf(u, g1), true);
  // the exact list removes the user from g1
  const exact = await convergeTwice(host, user, { username: u, groups: [g2] });
  assert.deepEqual(exact, [{ property: "groups", from: [g1, g2].sort(), to: [g2] }]);
  assert.equal(await memberOf(u, g1), false);
  // append only adds, and keeps g2
  await convergeTwice(host, user, { username: u, groups: [g1], appendGroups: true });
  assert.equal(await memberOf(u, g1), true);
  assert.equal(await memberOf(u, g2), true);
  // primary group by number
  const gid = Number(
    (await fs.readFile("/etc/group", "utf8")).match(new RegExp(`^${g2}:x:(\\d+):`, "m"))?.[1],
  );
  const primary = await convergeTwice(host, user, { username: u, gid });
  assert.equal(primary[0]?.property, "gid");
  assert.equal((await passwd(u))?.[3], String(gid));
});

test("user: a missing group is a clear error before useradd runs", { skip }, async () => {
  const props = await prepare(user, { username: users[4], groups: ["galley-t-nosuchgroup"] });
  await assert.rejects(
    user.apply(host, props, "create", undefined, { stateDir: "/nonexistent" }),
    (error: Error) => {
      assert.match(error.message, /no group galley-t-nosuchgroup/);
      assert.match((error as { hint?: string }).hint ?? "", /group\("galley-t-nosuchgroup"\)/);
      return true;
    },
  );
  assert.equal(await passwd(users[4]!), undefined);
});

test("user: password hash is set, never shown, and a change shows only that it changes", {
  skip,
}, async () => {
  const u = users[4]!;
  const created = await convergeTwice(host, user, { username: u, password: hash1 });
  assert.equal(await shadowHash(u), hash1);
  assert.doesNotMatch(JSON.stringify(created), /galleytest/);
  const changed = await convergeTwice(host, user, { username: u, password: hash2 });
  assert.deepEqual(changed, [{ property: "password", from: "(sensitive)", to: "(sensitive)" }]);
  assert.equal(await shadowHash(u), hash2);
  const current = await user.read(host, await prepare(user, { username: u, password: hash2 }));
  assert.doesNotMatch(JSON.stringify(current), /galleytest/);
  assert.deepEqual(user.sensitiveProperties, ["password"]);
});

test("user: lock and unlock, and a locked user stays locked under create", { skip }, async () => {
  const u = users[4]!;
  const locked = await convergeTwice(host, user, { username: u }, { action: "lock" });
  assert.deepEqual(locked, [{ property: "locked", from: false, to: true }]);
  assert.equal(await shadowHash(u), `!${hash2}`);
  assert.deepEqual(await convergeTwice(host, user, { username: u, password: hash2 }), []);
  // a new hash keeps the lock
  await convergeTwice(host, user, { username: u, password: hash1 });
  assert.equal(await shadowHash(u), `!${hash1}`);
  const unlocked = await convergeTwice(host, user, { username: u }, { action: "unlock" });
  assert.deepEqual(unlocked, [{ property: "locked", from: true, to: false }]);
  assert.equal(await shadowHash(u), hash1);
});

test("user: unlocking a user without password and locking a missing user are clear errors", {
  skip,
}, async () => {
  const noPassword = await prepare(user, { username: users[1] });
  const current = await user.read(host, noPassword);
  assert.equal(current?.shadow?.hasPassword, false);
  await assert.rejects(
    user.apply(host, noPassword, "unlock", current, { stateDir: "/x" }),
    /has no password/,
  );
  const missing = await prepare(user, { username: "galley-t-nosuchuser" });
  assert.deepEqual(user.diff(undefined, missing, "lock"), [{ property: "locked", from: "absent", to: true }]);
  await assert.rejects(user.apply(host, missing, "lock", undefined, { stateDir: "/x" }), /does not exist/);
});

test("user: remove deletes the user and, with manageHome, its home", { skip }, async () => {
  const home = (await passwd(users[0]!))?.[5];
  assert.ok(home);
  const changes = await convergeTwice(
    host,
    user,
    { username: users[0], manageHome: true },
    { action: "remove" },
  );
  assert.deepEqual(changes, [{ property: "ensure", from: "present", to: "absent" }]);
  assert.equal(await passwd(users[0]!), undefined);
  await assert.rejects(fs.stat(home));
  assert.deepEqual(await convergeTwice(host, user, { username: users[0] }, { action: "remove" }), []);
});

test("user: schema refuses a plain-text password, a bad name and a ':' in comment", () => {
  const bad = (input: Record<string, unknown>, pattern: RegExp) => {
    const result = v.safeParse(user.schema, input);
    assert.equal(result.success, false);
    assert.match(JSON.stringify(result.issues), pattern);
  };
  bad({ username: "alice", password: "hunter2" }, /already hashed password/);
  bad({ username: "-alice" }, /letters, digits/);
  bad({ username: "12345" }, /all digits/);
  bad({ username: "alice", comment: "a:b" }, /must not contain ':'/);
  bad({ username: "alice", shel: "/bin/sh" }, /shel/);
});

test("user: autoRequires its primary and supplementary groups", async () => {
  const props = await prepare(user, { username: "alice", gid: "staff", groups: ["sudo", "adm"] });
  assert.deepEqual(user.autoRequires?.(props), [{ group: "staff" }, { group: "sudo" }, { group: "adm" }]);
  assert.deepEqual(user.autoRequires?.(await prepare(user, { username: "bob", gid: 100 })), []);
});
