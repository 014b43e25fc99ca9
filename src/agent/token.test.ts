import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import { decodeEnrollmentToken, encodeEnrollmentToken } from "./token.ts";

const fingerprint = "ab".repeat(32);
const secret = randomBytes(32).toString("base64url");

test("an enrollment token decodes to its stack, instance, secret and CA fingerprint", () => {
  const token = encodeEnrollmentToken({ stack: "prod", instance: "web1", secret, ca: fingerprint });
  assert.match(token, /^gle1_[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeEnrollmentToken(token), {
    stack: "prod",
    instance: "web1",
    secret,
    ca: fingerprint,
  });
});

test("a token that is not one is refused, saying what to copy", () => {
  const encoded = (fields: object) => `gle1_${Buffer.from(JSON.stringify(fields)).toString("base64url")}`;
  for (const token of [
    "abc",
    "gle1_!!!",
    encoded({ s: "p", i: "w", k: secret }),
    encoded({ s: "p", i: "w", k: secret, ca: "zz" }),
    encoded({ s: "p", i: "w", k: "short", ca: fingerprint }),
  ]) {
    assert.throws(
      () => decodeEnrollmentToken(token),
      (error: Error & { code?: string; hint?: string }) => {
        assert.equal(error.code, "ENROLL_REFUSED");
        assert.match(error.message, /not a Galley enrollment token/);
        assert.match(error.hint ?? "", /gle1_/);
        return true;
      },
    );
  }
});
