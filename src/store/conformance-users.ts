// The server's users, their web sessions and an instance's reports as tests: part of the
// conformance suite (storeConformance registers it). Only the Store interface is used.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { GalleyError } from "../core/errors.ts";
import type { StoreOpener } from "./conformance.ts";
import { secretHash } from "./conformance-server.ts";
import type { SessionInput, Store } from "./store.ts";

const stateInvalid = (pattern: RegExp) => (error: unknown) =>
  error instanceof GalleyError && error.code === "STATE_INVALID" && pattern.test(error.message);

/** A password hash as src/server/users.ts makes them (its bytes random here, never checked). */
export function fakePasswordHash(): string {
  return `scrypt$16384$8$1$${randomBytes(16).toString("base64url")}$${randomBytes(32).toString("base64url")}`;
}

const later = (minutes: number) => new Date(Date.UTC(2030, 0, 1, 0, minutes)).toISOString();

/** A web session of `actor`, expiring at `later(expires)`. */
function session(actor: SessionInput["actor"], expires = 60): SessionInput {
  return {
    hash: secretHash(),
    actor,
    csrf: randomBytes(24).toString("base64url"),
    expiresAt: later(expires),
  };
}

/** Registers the users, sessions and instance-report part of the Store conformance tests under `name`. */
export function usersConformance(name: string, opener: StoreOpener): void {
  const it = (title: string, fn: (store: Store) => Promise<void>) =>
    test(`${name} store: ${title}`, async () => {
      const store = await opener.fresh();
      try {
        await fn(store);
      } finally {
        await store.close();
      }
    });

  it("users: created, found, listed by name, changed, deleted; a taken name is refused", async (store) => {
    assert.equal(await store.getUser("alice"), undefined);
    assert.deepEqual(await store.listUsers(), []);
    const hash = fakePasswordHash();
    const alice = await store.createUser({
      name: "alice",
      passwordHash: hash,
      grants: [{ stack: "web", role: "deployer" }],
    });
    assert.equal(alice.name, "alice");
    assert.equal(alice.passwordHash, hash);
    assert.deepEqual(alice.grants, [{ stack: "web", role: "deployer" }]);
    assert.equal(alice.createdAt, alice.updatedAt);
    assert.equal(alice.lastLoginAt, undefined);
    assert.ok(!("lastLoginAt" in alice), "left out when never logged in");
    await store.createUser({ name: "Bob.o@x-y_z", passwordHash: fakePasswordHash(), grants: [] });
    await assert.rejects(
      store.createUser({ name: "alice", passwordHash: fakePasswordHash(), grants: [] }),
      stateInvalid(/a user alice already exists/),
    );
    assert.deepEqual(await store.getUser("alice"), alice);
    assert.deepEqual(
      (await store.listUsers()).map((user) => user.name),
      ["Bob.o@x-y_z", "alice"],
    );
    const other = fakePasswordHash();
    const changed = await store.updateUser("alice", { passwordHash: other });
    assert.equal(changed.passwordHash, other);
    assert.deepEqual(changed.grants, alice.grants, "grants kept when not given");
    const login = "2030-01-01T00:00:00.000Z";
    const granted = await store.updateUser("alice", {
      grants: [{ stack: "*", role: "admin" }],
      lastLoginAt: login,
    });
    assert.deepEqual(granted.grants, [{ stack: "*", role: "admin" }]);
    assert.equal(granted.passwordHash, other, "password hash kept when not given");
    assert.equal(granted.lastLoginAt, login);
    assert.equal(granted.createdAt, alice.createdAt);
    await assert.rejects(store.updateUser("carol", { grants: [] }), stateInvalid(/no user carol/));
    assert.equal(await store.deleteUser("alice"), true);
    assert.equal(await store.deleteUser("alice"), false);
    assert.equal(await store.getUser("alice"), undefined);
  });

  it("users: a bad name, a password instead of its hash, or a bad grant is refused", async (store) => {
    for (const name of ["", "a b", "x".repeat(65), "ünï", "a/b"]) {
      await assert.rejects(
        store.createUser({ name, passwordHash: fakePasswordHash(), grants: [] }),
        stateInvalid(/user name/),
        name,
      );
    }
    assert.ok(await store.createUser({ name: "x".repeat(64), passwordHash: fakePasswordHash(), grants: [] }));
    await assert.rejects(
      store.createUser({ name: "alice", passwordHash: "hunter2", grants: [] }),
      stateInvalid(/password hash/),
    );
    await assert.rejects(
      store.createUser({
        name: "alice",
        passwordHash: fakePasswordHash(),
        grants: [{ stack: "web", role: "owner" as "admin" }],
      }),
      stateInvalid(/unknown role/),
    );
    assert.equal(await store.getUser("alice"), undefined);
  });

  it("sessions: found by hash until they expire; touched, they slide; deleted one by one", async (store) => {
    await store.createUser({ name: "alice", passwordHash: fakePasswordHash(), grants: [] });
    const input = session({ kind: "user", name: "alice" }, 30);
    const created = await store.createSession(input);
    assert.deepEqual(created.actor, { kind: "user", name: "alice" });
    assert.equal(created.csrf, input.csrf);
    assert.equal(created.expiresAt, input.expiresAt);
    assert.equal(created.createdAt, created.lastSeenAt);
    assert.deepEqual(await store.sessionByHash(input.hash, later(0)), created);
    assert.equal(await store.sessionByHash(input.hash, later(30)), undefined, "expired at its expiry");
    assert.equal(await store.sessionByHash(secretHash(), later(0)), undefined);
    await store.touchSession(input.hash, later(20), later(50));
    const touched = await store.sessionByHash(input.hash, later(40));
    assert.equal(touched?.lastSeenAt, later(20));
    assert.equal(touched?.expiresAt, later(50));
    await assert.rejects(store.createSession(input), stateInvalid(/already exists/));
    await store.deleteSession(input.hash);
    assert.equal(await store.sessionByHash(input.hash, later(0)), undefined);
    // touching a session deleted meanwhile (logged out) does not bring it back
    await store.touchSession(input.hash, later(1), later(60));
    assert.equal(await store.sessionByHash(input.hash, later(0)), undefined);
  });

  it("sessions: refused for an unknown user or token, a secret instead of its hash, a bad actor", async (store) => {
    await assert.rejects(
      store.createSession(session({ kind: "user", name: "nobody" })),
      stateInvalid(/no user nobody/),
    );
    await assert.rejects(
      store.createSession(session({ kind: "token", tokenId: "abc" })),
      stateInvalid(/no token abc/),
    );
    await store.createUser({ name: "alice", passwordHash: fakePasswordHash(), grants: [] });
    const good = session({ kind: "user", name: "alice" });
    await assert.rejects(store.createSession({ ...good, hash: "the-cookie-secret" }), stateInvalid(/sha256/));
    await assert.rejects(
      store.createSession({ ...good, actor: { kind: "robot" } as unknown as SessionInput["actor"] }),
      stateInvalid(/no user or token/),
    );
    await assert.rejects(store.createSession({ ...good, expiresAt: "later" }), stateInvalid(/not a time/));
    await assert.rejects(store.createSession({ ...good, csrf: "" }), stateInvalid(/CSRF/));
  });

  it("sessions: deleted by actor, with their user, and once expired", async (store) => {
    await store.createUser({ name: "alice", passwordHash: fakePasswordHash(), grants: [] });
    await store.createUser({ name: "bob", passwordHash: fakePasswordHash(), grants: [] });
    const token = await store.createToken({
      name: "ci",
      grants: [{ stack: "*", role: "admin" }],
      hash: secretHash(),
    });
    const alice = [
      session({ kind: "user", name: "alice" }, 10),
      session({ kind: "user", name: "alice" }, 50),
    ];
    const bob = session({ kind: "user", name: "bob" }, 10);
    const viaToken = [
      session({ kind: "token", tokenId: token.id }, 10),
      session({ kind: "token", tokenId: token.id }, 50),
    ];
    for (const each of [...alice, bob, ...viaToken]) await store.createSession(each);
    const found = await store.sessionByHash(viaToken[0]!.hash, later(0));
    assert.deepEqual(found?.actor, { kind: "token", tokenId: token.id });
    assert.equal(await store.deleteSessionsOf({ kind: "token", tokenId: token.id }), 2);
    assert.equal(await store.sessionByHash(viaToken[1]!.hash, later(0)), undefined);
    assert.equal(await store.deleteSessionsOf({ kind: "token", tokenId: token.id }), 0);
    // a user named like a token id is another actor
    assert.equal(await store.deleteSessionsOf({ kind: "token", tokenId: "alice" }), 0);
    assert.equal(await store.deleteUser("alice"), true);
    assert.equal(
      await store.sessionByHash(alice[1]!.hash, later(0)),
      undefined,
      "deleteUser removes its sessions",
    );
    assert.ok(await store.sessionByHash(bob.hash, later(0)));
    assert.equal(await store.deleteExpiredSessions(later(9)), 0);
    assert.equal(await store.deleteExpiredSessions(later(10)), 1);
    assert.equal(
      await store.sessionByHash(bob.hash, "2020-01-01T00:00:00.000Z"),
      undefined,
      "gone, whatever the time",
    );
  });

  it("an instance's outcomes across the stack's events, newest first, with their event; limit and before", async (store) => {
    const ids: number[] = [];
    for (const stack of ["web", "web", "db", "web", "web"]) {
      const event = await store.createEvent({ stack, kind: "run-recipes", args: {} });
      ids.push(event.id);
      for (const instance of ["app1", "app2"]) {
        await store.recordInstanceOutcome({
          eventId: event.id,
          instance,
          status: "succeeded",
          report: { resources: [] },
          log: `log of ${instance} in ${event.id}\n`,
          startedAt: "2030-01-01T00:00:00.000Z",
        });
      }
    }
    // the third event is of stack db: not among the outcomes of web
    const web = ids.filter((_, i) => i !== 2);
    const all = await store.listInstanceOutcomes("web", "app1");
    assert.deepEqual(
      all.map((outcome) => outcome.eventId),
      [...web].reverse(),
    );
    assert.equal(all[0]!.instance, "app1");
    assert.equal(all[0]!.log, `log of app1 in ${web[3]}\n`);
    assert.deepEqual(all[0]!.report, { resources: [] });
    assert.equal(all[0]!.event.id, web[3]);
    assert.equal(all[0]!.event.stack, "web");
    assert.equal(all[0]!.event.kind, "run-recipes");
    assert.deepEqual(
      (await store.listInstanceOutcomes("web", "app1", { limit: 2 })).map((outcome) => outcome.eventId),
      [web[3], web[2]],
    );
    assert.deepEqual(
      (await store.listInstanceOutcomes("web", "app1", { before: web[2]!, limit: 1 })).map((o) => o.eventId),
      [web[1]],
    );
    assert.deepEqual(
      (await store.listInstanceOutcomes("db", "app2")).map((outcome) => outcome.eventId),
      [ids[2]],
    );
    assert.deepEqual(await store.listInstanceOutcomes("web", "app9"), []);
  });
}
