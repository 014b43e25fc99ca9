import assert from "node:assert/strict";
import { test } from "node:test";
import { feedKinds as storeKinds, roles as storeRoles, type Grant } from "../../store/store.ts";
import { grantsAllow as serverAllows } from "../auth.ts";
import { FeedCursor, feedKinds, lastUrl, streamUrl } from "./ui/feed-cursor.ts";
import { relativeTime, statusTone } from "./ui/format.ts";
import { grantsAllow, grantsText, parseGrants, roles } from "./ui/grants.ts";
import { applyEntry, canStart, canStop, overviewOf } from "./ui/live.ts";
import { matchPath, resolveRoute, safeNext } from "./ui/routes.ts";
import type { StackSummary } from "./ui/types.ts";

// The panel's logic that needs no browser: routes, grants as the server checks them, the feed
// cursor (resume and dedup), live updates of a stack summary, and display helpers.

test("routes: each page path names its page and parameters", () => {
  assert.deepEqual(resolveRoute("/"), { page: "stacks", params: {} });
  assert.deepEqual(resolveRoute("/stacks/web"), { page: "stack", params: { stack: "web" } });
  assert.deepEqual(resolveRoute("/stacks/my%20stack/"), { page: "stack", params: { stack: "my stack" } });
  assert.deepEqual(resolveRoute("/stacks/web/deployments"), {
    page: "deployments",
    params: { stack: "web" },
  });
  assert.deepEqual(resolveRoute("/stacks/web/instances/a1"), {
    page: "instance",
    params: { stack: "web", name: "a1" },
  });
  assert.deepEqual(resolveRoute("/stacks/web/instances/a1/runs/3/42"), {
    page: "report",
    params: { stack: "web", name: "a1", generation: "3", seq: "42" },
  });
  assert.deepEqual(resolveRoute("/events/7/instances/a1"), {
    page: "report",
    params: { id: "7", name: "a1" },
  });
  assert.deepEqual(resolveRoute("/events/7"), { page: "event", params: { id: "7" } });
  assert.deepEqual(resolveRoute("/deployments/9"), { page: "deployment", params: { id: "9" } });
  assert.deepEqual(resolveRoute("/audit"), { page: "audit", params: {} });
  assert.deepEqual(resolveRoute("/login"), { page: "login", params: {} });
  assert.deepEqual(resolveRoute("/users"), { page: "users", params: {} });
  assert.equal(resolveRoute("/nothing"), undefined);
  assert.equal(resolveRoute("/stacks/web/nothing"), undefined);
  assert.equal(
    matchPath("/stacks/:stack", "/stacks/%E0%A4%A"),
    undefined,
    "a malformed escape matches nothing",
  );
});

test("after login: only a path of this panel", () => {
  assert.equal(safeNext("/stacks/web?x=1"), "/stacks/web?x=1");
  for (const bad of [
    null,
    undefined,
    "",
    "https://evil.example/",
    "//evil.example/x",
    "/\\evil.example",
    "/login?next=/",
  ])
    assert.equal(safeNext(bad), "/", String(bad));
});

test("grants: the panel decides as the server does", () => {
  assert.deepEqual([...roles], [...storeRoles]);
  const sets: Grant[][] = [
    [],
    [{ stack: "*", role: "viewer" }],
    [{ stack: "*", role: "admin" }],
    [{ stack: "web", role: "deployer" }],
    [
      { stack: "web", role: "viewer" },
      { stack: "db", role: "admin" },
    ],
  ];
  for (const grants of sets)
    for (const stack of ["web", "db", "other", undefined])
      for (const role of roles)
        assert.equal(
          grantsAllow(grants, stack, role),
          serverAllows(grants, stack, role),
          `${JSON.stringify(grants)} ${stack} ${role}`,
        );
});

test("grants as people type and read them", () => {
  assert.deepEqual(parseGrants(" web:deployer, *:viewer  db:admin"), {
    grants: [
      { stack: "web", role: "deployer" },
      { stack: "*", role: "viewer" },
      { stack: "db", role: "admin" },
    ],
  });
  for (const bad of ["", "web", "web:owner", "web:deployer,:viewer", "a:b:c"])
    assert.ok("error" in parseGrants(bad), bad);
  assert.equal(
    grantsText([
      { stack: "*", role: "admin" },
      { stack: "web", role: "viewer" },
    ]),
    "*:admin, web:viewer",
  );
});

test("feed cursor: every entry once, in order, resuming after the last one seen", () => {
  assert.deepEqual([...feedKinds], [...storeKinds], "the SSE event names are the store's feed kinds");
  const cursor = new FeedCursor(10);
  const seen = [9, 10, 11, 12, 12, 11, 13, 15, 14].filter((id) => cursor.accept({ id }));
  assert.deepEqual(seen, [11, 12, 13, 15]);
  assert.equal(cursor.last, 15);
  // a reconnect's backlog overlapping what was applied adds only the new entries
  assert.deepEqual(
    [13, 14, 15, 16, 17].filter((id) => cursor.accept({ id })),
    [16, 17],
  );
  const fresh = new FeedCursor();
  assert.equal(fresh.accept({ id: 1 }), true);
  assert.equal(fresh.accept({ id: Number.NaN }), false);

  assert.equal(streamUrl({}, undefined), "/v1/feed/stream");
  assert.equal(
    streamUrl({ kinds: ["instance", "event"] }, 5),
    "/v1/feed/stream?kinds=instance%2Cevent&after=5",
  );
  assert.equal(
    streamUrl({ stack: "my stack", subject: "deployment:7", kinds: ["log"] }, 0),
    "/v1/stacks/my%20stack/feed/stream?subject=deployment%3A7&kinds=log&after=0",
  );
  assert.equal(lastUrl("web"), "/v1/stacks/web/feed?limit=1&order=desc");
});

const summary: StackSummary = {
  name: "shop",
  file: "stacks/shop.yaml",
  stateVersion: 3,
  layers: [{ name: "web", autoHealing: true, instances: ["web1", "web2"] }],
  instances: ["web1", "web2"].map((name) => ({
    name,
    layers: ["web"],
    status: "stopped",
    transport: "ssh" as const,
    provider: "container",
    scaling: "always" as const,
    inService: true,
    weight: 100,
    agent: null,
  })),
  apps: [
    {
      name: "site",
      layers: ["web"],
      source: { type: "git" },
      deployed: {
        id: 4,
        stack: "shop",
        app: "site",
        revision: "abc123",
        requested: "main",
        strategy: "rolling",
        params: {},
        user: "token:admin",
        status: "succeeded",
        createdAt: "2026-01-01T00:00:00Z",
        finishedAt: "2026-01-01T00:01:00Z",
      },
      ab: null,
    },
  ],
  events: [1, 2, 3, 4, 5, 6, 7].map((id) => ({
    id,
    stack: "shop",
    kind: "configure",
    status: "succeeded",
    createdAt: "2026-01-01T00:00:00Z",
  })),
  deployments: [],
};

test("live: an instance's status applies at once; what the summary cannot tell asks for it again", () => {
  const entry = (kind: string, subject: string | undefined, data: unknown, stack = "shop") =>
    ({ id: 1, at: "2026-01-01T00:00:00Z", stack, kind, subject, data }) as Parameters<typeof applyEntry>[1];
  const booting = applyEntry(
    summary,
    entry("instance", "instance:web1", { status: "booting", address: "10.0.0.2" }),
  );
  assert.ok(booting);
  assert.equal(booting.instances[0]?.status, "booting");
  assert.equal(booting.instances[0]?.address, "10.0.0.2");
  assert.equal(booting.instances[1]?.status, "stopped");
  assert.equal(summary.instances[0]?.status, "stopped", "the summary given is not changed");
  const connected = applyEntry(booting, entry("agent", "instance:web2", { connected: true }));
  assert.deepEqual(connected?.instances[1]?.agent, { connected: true, lastSeenAt: "2026-01-01T00:00:00Z" });
  assert.equal(applyEntry(summary, entry("instance", "instance:web9", { status: "online" })), undefined);
  assert.equal(applyEntry(summary, entry("event", "event:8", { id: 8 })), undefined);
  assert.equal(applyEntry(summary, entry("instance", "instance:web1", {}, "other")), summary);

  const card = overviewOf(booting);
  assert.deepEqual(card.counts, { booting: 1, stopped: 1 });
  assert.deepEqual(card.layers, [{ name: "web", instances: ["web1", "web2"] }]);
  assert.equal(card.events.length, 5);
  assert.deepEqual(card.apps[0]?.deployed, {
    id: 4,
    revision: "abc123",
    requested: "main",
    status: "succeeded",
    finishedAt: "2026-01-01T00:01:00Z",
  });
});

test("start and stop are offered by status", () => {
  assert.deepEqual(
    ["stopped", "online", "setup_failed", "booting", "connection_lost", "terminated"].map((s) => [
      s,
      canStart(s),
      canStop(s),
    ]),
    [
      ["stopped", true, false],
      ["online", false, true],
      ["setup_failed", true, true],
      ["booting", false, false],
      ["connection_lost", true, true],
      ["terminated", true, false],
    ],
  );
});

test("relative times and status tones", () => {
  const now = Date.parse("2026-01-01T12:00:00Z");
  assert.equal(relativeTime("2026-01-01T12:00:03Z", now), "just now");
  assert.equal(relativeTime("2026-01-01T11:55:00Z", now), "5 minutes ago");
  assert.equal(relativeTime("2026-01-01T14:00:00Z", now), "in 2 hours");
  assert.equal(relativeTime("2025-12-31T12:00:00Z", now), "yesterday");
  assert.equal(relativeTime("not a time", now), "not a time");
  assert.equal(statusTone("online"), "good");
  assert.equal(statusTone("setup_failed"), "bad");
  assert.equal(statusTone("booting"), "busy");
  assert.equal(statusTone("stopped"), "idle");
  assert.equal(statusTone("something new"), "neutral");
});
