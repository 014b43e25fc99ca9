import { createHash, X509Certificate } from "node:crypto";
import { GalleyError } from "../core/errors.ts";

// The one-time enrollment token an operator hands to `galley agent enroll --token T`: the server
// mints it (`gle1_` + base64url JSON), the agent reads the instance it speaks for and the CA to pin.

/** What an enrollment token carries. */
export interface EnrollmentToken {
  stack: string;
  instance: string;
  /** the one-time secret (base64url); the server keeps only its sha256 */
  secret: string;
  /** sha256 hex of the server CA certificate's DER */
  ca: string;
}

const prefix = "gle1_";

/**
 * Decodes an enrollment token; ENROLL_REFUSED naming what is wrong when it is not one.
 *
 * @example decodeEnrollmentToken("gle1_eyJzIjoi…") // { stack: "prod", instance: "web1", secret: "…", ca: "ab12…" }
 */
export function decodeEnrollmentToken(token: string): EnrollmentToken {
  const bad = (why: string) =>
    new GalleyError("ENROLL_REFUSED", `the enrollment token is not valid: ${why}`, {
      hint: "copy the whole token `galley agent token STACK INSTANCE` printed (it starts with gle1_)",
    });
  const trimmed = token.trim();
  if (!trimmed.startsWith(prefix)) throw bad(`it does not start with ${prefix}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(trimmed.slice(prefix.length), "base64url").toString("utf8"));
  } catch {
    throw bad("it is not base64url JSON");
  }
  const fields = parsed as Record<string, unknown> | null;
  const text = (key: string) =>
    typeof fields?.[key] === "string" && fields[key] !== "" ? fields[key] : undefined;
  const stack = text("s");
  const instance = text("i");
  const secret = text("k");
  const ca = text("ca");
  if (!stack || !instance || !secret || !ca) throw bad("a field is missing (stack, instance, secret or CA)");
  if (!/^[0-9a-f]{64}$/.test(ca)) throw bad("its CA fingerprint is not 64 hex digits");
  return { stack, instance, secret, ca };
}

/** Encodes a token (the server's format; the agent's tests use it). */
export function encodeEnrollmentToken(token: EnrollmentToken): string {
  const json = JSON.stringify({ s: token.stack, i: token.instance, k: token.secret, ca: token.ca });
  return `${prefix}${Buffer.from(json).toString("base64url")}`;
}

/** The sha256 hex of a PEM certificate's DER: what a token's `ca` names. */
export function caFingerprint(pem: string): string {
  const der = new X509Certificate(pem).raw;
  return createHash("sha256").update(der).digest("hex");
}
