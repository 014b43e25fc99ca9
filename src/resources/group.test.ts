import * as v from "valibot";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { after, before, test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { group } from "./group.ts";
import { convergeTwice, prepare } from "./testing.ts";

const host = new LocalHost();
const skip = process.getuid?.() !== 0 && "needs root: creates and removes real groups with groupadd/groupdel";
const suffix = process.pid.toString(36);
const [g1, g2, g3] = ["a", "b", "c"].map((tag) => `galley-t-g${tag}${suffix}`) as [string, string, string];
const [u1, u2, u3] = ["1", "2", "3"].map((tag) => `galley-t-gu${tag}${suffix}`) as [string, string, string];

before(async () => {
  if (skip) return;
  for (const u of [u1, u2, u3]) await host.exec(["useradd", "-M", "-N", u]);
});

after(async () => {
  if (skip) return;
  for (const u of [u1, u2, u3]) await host.exec(["userdel", u]);
  for (const g of [g1, g2, g3]) await host.exec(["groupdel", g]);
});

async function entry(name: string): Promise<string[] | undefined> {
  const line = (await fs.readFile("/etc/group", "utf8")).split("\n").find((l) => l.startsWith(`${name}:`));
  return line?.split(":");
}

test("group: create with gid and members, then changes nothing", { skip }, async () => {
  const changes = await convergeTwice(host, group, { groupName: g1, gid: 54320, members: [u2, u1] });
  assert.deepEqual(changes, [
    { property: "ensure", from: "absent", to: "present" },
    { property: "gid", to: 54320 },
    { property: "members", to: [u1, u2] },
  ]);
  assert.deepEqual(await entry(g1), [g1, "x", "54320", `${u1},${u2}`]);
});

test("group: drifted gid and members are put back to the exact list", { skip }, async () => {
  await host.exec(["groupmod", "-g", "54319", g1]);
  await host.exec(["gpasswd", "-a", u3, g1]);
  const changes = await convergeTwice(host, group, { groupName: g1, gid: 54320, members: [u1, u2] });
  assert.deepEqual(changes, [
    { property: "gid", from: 54319, to: 54320 },
    { property: "members", from: [u1, u2, u3], to: [u1, u2] },
  ]);
  assert.deepEqual(await entry(g1), [g1, "x", "54320", `${u1},${u2}`]);
});

test("group: an empty exact list removes every member", { skip }, async () => {
  await convergeTwice(host, group, { groupName: g1, members: [] });
  assert.equal((await entry(g1))?.[3], "");
});

test("group: append only adds members", { skip }, async () => {
  await host.exec(["groupadd", g2]);
  await host.exec(["gpasswd", "-a", u3, g2]);
  const changes = await convergeTwice(host, group, { groupName: g2, members: [u1], append: true });
  assert.deepEqual(changes, [{ property: "members", from: [u3], to: [u1, u3].sort() }]);
  assert.deepEqual((await entry(g2))?.[3]?.split(",").sort(), [u1, u3].sort());
});

test("group: system creates a system group; members not managed when omitted", { skip }, async () => {
  await convergeTwice(host, group, { groupName: g3, system: true });
  const gid = Number((await entry(g3))?.[2]);
  assert.ok(gid < 1000, `system gid ${gid} should be below 1000`);
});

test("group: a member that is not a user is a clear error", { skip }, async () => {
  const props = await prepare(group, { groupName: g3, members: ["galley-t-nosuchuser"] });
  const current = await group.read(host, props);
  await assert.rejects(group.apply(host, props, "create", current, { stateDir: "/x" }), (error: Error) => {
    assert.match(error.message, /no user galley-t-nosuchuser/);
    assert.match((error as { hint?: string }).hint ?? "", /declare those users/);
    return true;
  });
});

test("group: removing a user's primary group is refused with a hint", { skip }, async () => {
  await host.exec(["usermod", "-g", g3, u3]);
  const props = await prepare(group, { groupName: g3 });
  const current = await group.read(host, props);
  await assert.rejects(
    group.apply(host, props, "remove", current, { stateDir: "/x" }),
    /primary group of galley-t-gu3/,
  );
  await host.exec(["userdel", u3]);
});

test("group: remove deletes the group, twice is a no-op", { skip }, async () => {
  const changes = await convergeTwice(host, group, { groupName: g3 }, { action: "remove" });
  assert.deepEqual(changes, [{ property: "ensure", from: "present", to: "absent" }]);
  assert.equal(await entry(g3), undefined);
});

test("group: members autorequire nothing (users require their groups instead)", async () => {
  const props = await prepare(group, { groupName: "admins", members: ["alice"] });
  assert.deepEqual(group.autoRequires?.(props) ?? [], []);
  assert.equal(group.key(props), "admins");
});

test("group: schema refuses bad names and unknown properties", () => {
  assert.equal(v.safeParse(group.schema, { groupName: "a b" }).success, false);
  assert.equal(v.safeParse(group.schema, { groupName: "ok", gid: -1 }).success, false);
  assert.match(JSON.stringify(v.safeParse(group.schema, { groupName: "ok", member: [] }).issues), /member/);
});
