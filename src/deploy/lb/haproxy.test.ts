import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { GalleyError } from "../../core/errors.ts";
import { LocalHost } from "../../hosts/local.ts";
import { tempDir } from "../../resources/testing.ts";
import { parseServersState, parseShowStat, serverStates } from "./haproxy.ts";
import { loadBalancers } from "./index.ts";

// Captured from HAProxy 2.6.12 (Debian 12) in test/lb-drain.test.ts: backend app, app1 drained
// through the runtime API (`set server app/app1 state drain`), app2 ready.
const fixture = (name: string) => readFileSync(path.join(import.meta.dirname, "fixtures", name), "utf8");
const stat = fixture("haproxy-2.6-show-stat.csv");
const state = fixture("haproxy-2.6-show-servers-state.txt");

test("show stat: the backend's servers with status and current sessions; frontend and BACKEND rows left out", () => {
  assert.deepEqual(
    parseShowStat(stat, "app"),
    new Map([
      ["app1", { status: "DRAIN", sessions: 0 }],
      ["app2", { status: "UP", sessions: 0 }],
    ]),
  );
  assert.deepEqual(parseShowStat(stat, "www"), new Map());
});

test("show servers state: each server's srv_admin_state bits", () => {
  assert.deepEqual(
    parseServersState(state, "app"),
    new Map([
      ["app1", 8],
      ["app2", 0],
    ]),
  );
});

test("show servers state: each server's weight asked at runtime (srv_uweight)", () => {
  assert.deepEqual(
    parseServersState(state, "app", "srv_uweight"),
    new Map([
      ["app1", 1],
      ["app2", 1],
    ]),
  );
});

test("a drained server: admin drain and no session; a ready one is up", () => {
  const servers = serverStates("app", stat, state);
  assert.deepEqual(servers.get("app1"), {
    name: "app1",
    status: "DRAIN",
    sessions: 0,
    up: false,
    drained: true,
    admin: "drain",
    weight: 1,
  });
  assert.deepEqual(servers.get("app2"), {
    name: "app2",
    status: "UP",
    sessions: 0,
    up: true,
    drained: false,
    admin: "ready",
    weight: 1,
  });
});

/** The fixture with one server's status, current sessions and admin state changed. */
function variant(server: string, status: string, scur: number, admin: number) {
  const columns = stat.split("\n")[0]!.slice(2).split(",");
  const lines = stat.split("\n").map((line) => {
    const cells = line.split(",");
    if (cells[1] !== server) return line;
    cells[columns.indexOf("status")] = status;
    cells[columns.indexOf("scur")] = String(scur);
    return cells.join(",");
  });
  const states = state.split("\n").map((line) => {
    const cells = line.split(" ");
    if (cells[3] !== server) return line;
    cells[6] = String(admin);
    return cells.join(" ");
  });
  return serverStates("app", lines.join("\n"), states.join("\n")).get(server)!;
}

const cases: {
  what: string;
  status: string;
  scur: number;
  admin: number;
  up: boolean;
  drained: boolean;
  as: string;
}[] = [
  {
    what: "draining, sessions left",
    status: "DRAIN",
    scur: 3,
    admin: 8,
    up: false,
    drained: false,
    as: "drain",
  },
  {
    what: "in maintenance (forced)",
    status: "MAINT",
    scur: 0,
    admin: 1,
    up: false,
    drained: true,
    as: "maint",
  },
  {
    what: "maintenance from the configuration",
    status: "MAINT",
    scur: 0,
    admin: 4,
    up: false,
    drained: true,
    as: "maint",
  },
  // show stat says DOWN for a drained server whose checks fail: the admin state says drained
  { what: "drained and down", status: "DOWN", scur: 0, admin: 8, up: false, drained: true, as: "drain" },
  { what: "down, not drained", status: "DOWN", scur: 0, admin: 0, up: false, drained: false, as: "ready" },
  // a dead host: its sessions never end, but a down server gets nothing new
  {
    what: "drained, down, sessions stuck",
    status: "DOWN",
    scur: 4,
    admin: 8,
    up: false,
    drained: true,
    as: "drain",
  },
  {
    what: "up, health not full yet (after a reload)",
    status: "UP 1/2",
    scur: 0,
    admin: 0,
    up: true,
    drained: false,
    as: "ready",
  },
  { what: "going up", status: "DOWN 1/2", scur: 0, admin: 0, up: false, drained: false, as: "ready" },
];
for (const c of cases) {
  test(`server ${c.what}: up ${c.up}, drained ${c.drained}`, () => {
    const server = variant("app2", c.status, c.scur, c.admin);
    assert.equal(server.up, c.up);
    assert.equal(server.drained, c.drained);
    assert.equal(server.admin, c.as);
    assert.equal(server.sessions, c.scur);
  });
}

test("no admin state answer (an older HAProxy): the status decides", () => {
  const servers = serverStates("app", stat, "");
  assert.equal(servers.get("app1")?.admin, "drain");
  assert.equal(servers.get("app1")?.drained, true);
  assert.equal(servers.get("app2")?.admin, "ready");
});

test("show stat without CSV (no such backend): a GalleyError naming the backend", () => {
  assert.throws(
    () => parseShowStat("No such backend.\n", "api", "HAProxy on lb1"),
    (error: unknown) =>
      error instanceof GalleyError && /HAProxy on lb1/.test(error.message) && /"api"/.test(error.hint ?? ""),
  );
});

test("the driver on a host without HAProxy's socket: a GalleyError with a hint", async () => {
  const socket = path.join(await tempDir("galley-lb-"), "admin.sock");
  await assert.rejects(
    loadBalancers.haproxy.states(new LocalHost(), "app", { socket }),
    (error: unknown) =>
      error instanceof GalleyError &&
      error.message.includes(socket) &&
      /(no admin socket|neither socat nor perl)/.test(error.message) &&
      error.hint !== undefined,
  );
});

test("a backend name that is not one: refused before anything runs", async () => {
  await assert.rejects(
    loadBalancers.haproxy.states(new LocalHost(), "app; reboot"),
    (error: unknown) => error instanceof GalleyError && error.code === "ARGS_INVALID",
  );
});
