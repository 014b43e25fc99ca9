import assert from "node:assert/strict";
import { test } from "node:test";
import type { Store, UserRecord } from "../store/store.ts";
import {
  checkLogin,
  checkNewUser,
  hashPassword,
  passwordProblem,
  publicUser,
  userNameProblem,
  verifyPassword,
} from "./users.ts";

test("a password hash is scrypt$N$r$p$salt$hash, salted, and verifies only its password", async () => {
  const hash = await hashPassword("correct horse battery");
  assert.match(hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/);
  assert.notEqual(await hashPassword("correct horse battery"), hash, "a fresh salt each time");
  assert.equal(await verifyPassword("correct horse battery", hash), true);
  assert.equal(await verifyPassword("correct horse batterY", hash), false);
  assert.equal(await verifyPassword("", hash), false);
  // the same text in another Unicode normal form is the same password
  const accented = await hashPassword("caf\u00e9 au lait please");
  assert.equal(await verifyPassword("cafe\u0301 au lait please", accented), true);
  for (const bad of ["", "plain", "scrypt$1$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "bcrypt$…", `${hash}x$`])
    assert.equal(await verifyPassword("correct horse battery", bad), false, bad);
  // parameters from a damaged store that scrypt refuses (N not a power of two, or over maxmem) fail
  const [, , , , salt, key] = hash.split("$");
  assert.equal(await verifyPassword("correct horse battery", `scrypt$1000$8$1$${salt}$${key}`), false);
  assert.equal(await verifyPassword("correct horse battery", `scrypt$1048576$8$1$${salt}$${key}`), false);
});

test("checkLogin takes as long for an unknown user as for a wrong password", async () => {
  const user: UserRecord = {
    name: "alice",
    passwordHash: await hashPassword("correct horse battery"),
    grants: [{ stack: "web", role: "viewer" }],
    createdAt: "2026-12-04T00:00:00.000Z",
    updatedAt: "2026-12-04T00:00:00.000Z",
  };
  const store = {
    getUser: async (name: string) => (name === "alice" ? user : undefined),
  } as unknown as Store;
  assert.equal((await checkLogin(store, "alice", "correct horse battery"))?.name, "alice");
  const once = async (name: string, password: string) => {
    const started = performance.now();
    assert.equal(await checkLogin(store, name, password), undefined);
    return performance.now() - started;
  };
  await once("nobody", "warm up the dummy hash");
  // interleaved rounds, compared by their medians: a busy machine slows every kind alike
  const samples: Record<"wrong" | "unknown" | "invalid", number[]> = { wrong: [], unknown: [], invalid: [] };
  for (let round = 0; round < 7; round++) {
    samples.wrong.push(await once("alice", "not the password"));
    samples.unknown.push(await once("nobody", "not the password"));
    samples.invalid.push(await once("no such name!", "x".repeat(5000)));
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const wrong = median(samples.wrong);
  for (const what of ["unknown", "invalid"] as const) {
    const ms = median(samples[what]);
    assert.ok(
      ms > wrong * 0.33 && ms < wrong * 3,
      `${what}: ${ms.toFixed(0)} ms, wrong password ${wrong.toFixed(0)} ms`,
    );
  }
});

test("rules: passwords of 12 characters or more, user names of 1–64 of [A-Za-z0-9_.@-]", () => {
  assert.equal(passwordProblem("twelve chars"), undefined);
  assert.match(passwordProblem("eleven char") ?? "", /at least 12/);
  assert.match(passwordProblem("ééééééééééé") ?? "", /at least 12/, "characters, not bytes");
  assert.match(passwordProblem("x".repeat(1025)) ?? "", /at most 1024/);
  assert.match(passwordProblem(" leading space") ?? "", /white space/);
  for (const name of ["a", "alice", "alice.smith@example.com", "a_b-c", "x".repeat(64)])
    assert.equal(userNameProblem(name), undefined, name);
  for (const name of ["", "x".repeat(65), "a b", "a/b", "ünïcode", "a:b"])
    assert.ok(userNameProblem(name), name);
  assert.throws(() => checkNewUser({ name: "a b" }, "ARGS_INVALID"), { code: "ARGS_INVALID" });
  assert.throws(() => checkNewUser({ password: "short" }, "REQUEST_INVALID"), { code: "REQUEST_INVALID" });
  assert.doesNotThrow(() => checkNewUser({ name: "alice", password: undefined }, "ARGS_INVALID"));
  const shown = publicUser({
    name: "a",
    passwordHash: "scrypt$…",
    grants: [],
    createdAt: "t",
    updatedAt: "t",
  });
  assert.deepEqual(Object.keys(shown).sort(), ["createdAt", "grants", "name", "updatedAt"]);
});
