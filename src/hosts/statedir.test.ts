import assert from "node:assert/strict";
import * as os from "node:os";
import { test } from "node:test";
import { remoteStateDir } from "../fleet/push.ts";
import { hostArchiveDir } from "../lifecycle/apps.ts";
import { defaultStateDir, rootStateDir, stateDirOf } from "./statedir.ts";

test("one state-dir definition: root's, a user's, XDG's", () => {
  assert.equal(stateDirOf({ uid: 0, home: "/root" }), "/var/lib/galley");
  assert.equal(stateDirOf({ uid: 0, home: "/root" }, "/x/state"), "/var/lib/galley", "root ignores XDG");
  assert.equal(stateDirOf({ uid: 1000, home: "/home/deploy" }), "/home/deploy/.local/state/galley");
  assert.equal(stateDirOf({ uid: 1000, home: "/home/deploy" }, "/x/state"), "/x/state/galley");
  assert.equal(stateDirOf({ uid: 1000, home: "/home/deploy" }, ""), "/home/deploy/.local/state/galley");
});

test("solo, push and app archives use the same definition", () => {
  const me = { uid: process.getuid?.() ?? -1, home: os.homedir() };
  assert.equal(defaultStateDir({}), stateDirOf(me));
  assert.equal(defaultStateDir({ XDG_STATE_HOME: "/x/state" }), stateDirOf(me, "/x/state"));
  for (const user of [
    { uid: 0, home: "/root" },
    { uid: 1001, home: "/home/galleyssh" },
  ])
    assert.equal(remoteStateDir(user), stateDirOf(user));
  assert.equal(hostArchiveDir, `${rootStateDir}/apps`);
});
