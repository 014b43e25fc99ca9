import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import * as v from "valibot";
import { stackSchema } from "../stacks/schema.ts";
import { appDir, linkedPath, releaseRecipes, releaseTarget, revisionsLog, sharedPath } from "./releases.ts";

const stack = (release?: Record<string, unknown>) =>
  v.parse(stackSchema, {
    name: "web",
    layers: [{ name: "app" }],
    apps: [
      {
        name: "hello",
        layers: ["app"],
        source: { type: "git", url: "../hello.git" },
        ...(release ? { release } : {}),
      },
    ],
  });

test("releaseTarget: the release folder of a deployment, with the settings' defaults", () => {
  const target = releaseTarget(stack({ shared: { dirs: ["log"] } }).apps[0]!, 42)!;
  assert.deepEqual(target, {
    id: "42",
    dir: "/srv/hello",
    path: "/srv/hello/releases/42",
    current: "/srv/hello/current",
    shared: "/srv/hello/shared",
    settings: { deploy_to: "/srv", keep: 5, shared: { files: [], dirs: ["log"] }, hooks: {} },
  });
  assert.equal(revisionsLog(target), "/srv/hello/revisions.log");
  assert.equal(sharedPath(target, "log"), "/srv/hello/shared/log");
  assert.equal(linkedPath(target, "log"), "/srv/hello/releases/42/log");
});

test("releaseTarget: none for an app without release; deploy_to's trailing slash and / itself", () => {
  assert.equal(releaseTarget(stack().apps[0]!, 1), undefined);
  assert.equal(releaseTarget(stack({ deploy_to: "/opt/" }).apps[0]!, 1)?.path, "/opt/hello/releases/1");
  assert.equal(appDir("/", "hello"), "/hello");
});

test("releaseRecipes: the built-in recipes' files exist", () => {
  for (const file of Object.values(releaseRecipes)) assert.ok(existsSync(file), file);
});
