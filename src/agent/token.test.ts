import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeEnrollmentToken, encodeEnrollmentToken } from "./token.ts";

const fingerprint = "ab".repeat(32);

test("an enrollment token decodes to its stack, instance, secret and CA fingerprint", () => {
  const token = encodeEnrollmentToken({
    stack: "prod",
    instance: "web1",
    secret: "c2VjcmV0",
    ca: fingerprint,
  });
  assert.match(token, /^gle1_[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeEnrollmentToken(`  ${token}\n`), {
    stack: "prod",
    instance: "web1",
    secret: "c2VjcmV0",
    ca: fingerprint,
  });
});

test("a token that is not one is refused with what is wrong", () => {
  const refused = (token: string, message: RegExp) =>
    assert.throws(
      () => decodeEnrollmentToken(token),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "ENROLL_REFUSED");
        assert.match(error.message, message);
        return true;
      },
    );
  refused("abc", /does not start with gle1_/);
  refused("gle1_!!!", /not base64url JSON/);
  refused(`gle1_${Buffer.from(JSON.stringify({ s: "p", i: "w", k: "x" })).toString("base64url")}`, /missing/);
  refused(
    `gle1_${Buffer.from(JSON.stringify({ s: "p", i: "w", k: "x", ca: "zz" })).toString("base64url")}`,
    /64 hex/,
  );
});
