import assert from "node:assert/strict";
import { test } from "node:test";
import { sessionCookie, sessionHash, sessionSecretOf, slidExpiry } from "./sessions.ts";

test("a session expires 12 hours after its last use, and never later than 7 days after its creation", () => {
  const created = "2026-12-01T00:00:00.000Z";
  assert.equal(slidExpiry(created, new Date(created)), "2026-12-01T12:00:00.000Z");
  assert.equal(slidExpiry(created, new Date("2026-12-03T08:30:00.000Z")), "2026-12-03T20:30:00.000Z");
  assert.equal(slidExpiry(created, new Date("2026-12-07T20:00:00.000Z")), "2026-12-08T00:00:00.000Z");
  assert.equal(slidExpiry(created, new Date("2026-12-09T00:00:00.000Z")), "2026-12-08T00:00:00.000Z");
});

test("the session secret is read from the Cookie header; anything else is no session or a bad one", () => {
  const secret = "a".repeat(43);
  assert.equal(sessionSecretOf(`${sessionCookie}=${secret}`), secret);
  assert.equal(sessionSecretOf(`theme=dark; ${sessionCookie}=${secret}; other=1`), secret);
  assert.equal(sessionSecretOf(undefined), undefined);
  assert.equal(sessionSecretOf("theme=dark"), undefined);
  assert.equal(sessionSecretOf("galley_session=x"), undefined);
  assert.equal(sessionSecretOf(`${sessionCookie}=short`), "");
  assert.equal(sessionSecretOf(`${sessionCookie}=${secret}%00`), "");
  assert.match(sessionHash(secret), /^[0-9a-f]{64}$/);
});
