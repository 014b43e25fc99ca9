import { createHash, createPublicKey, randomBytes, X509Certificate } from "node:crypto";
import { GalleyError } from "../core/errors.ts";

// One-time agent enrollment tokens (here, below cli, server, agent and lifecycle, which all use them): `gle1_` + base64url(JSON {s: stack, i: instance, k: secret, ca: CA
// fingerprint}). The store keeps only sha256(secret); the agent checks the server's CA against `ca`
// before it trusts anything the server says.

/** The prefix of every enrollment token (version 1). */
export const enrollmentPrefix = "gle1_";

/** What an enrollment token carries. */
export interface EnrollmentToken {
  stack: string;
  instance: string;
  /** 32 random bytes, base64url: the credential */
  secret: string;
  /** sha256 hex of the server CA certificate's DER */
  ca: string;
}

/** What minting needs of the store. */
export interface EnrollmentStore {
  createEnrollment(input: {
    stack: string;
    instance: string;
    hash: string;
    expiresAt: string;
  }): Promise<void>;
}

/** sha256 hex of a token's secret: what the store keeps. */
export function secretHash(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/**
 * Mints a one-time enrollment token for an instance (replacing an unused one) and returns it: the
 * only time it exists in clear.
 *
 * @example const token = await mintEnrollment(store, { stack: "prod", instance: "web1", caFingerprint, ttlMs: 86_400_000 })
 */
export async function mintEnrollment(
  store: EnrollmentStore,
  options: { stack: string; instance: string; caFingerprint: string; ttlMs: number; now?: Date | undefined },
): Promise<string> {
  const secret = randomBytes(32).toString("base64url");
  const expiresAt = new Date((options.now ?? new Date()).getTime() + options.ttlMs).toISOString();
  await store.createEnrollment({
    stack: options.stack,
    instance: options.instance,
    hash: secretHash(secret),
    expiresAt,
  });
  return encodeEnrollment({
    stack: options.stack,
    instance: options.instance,
    secret,
    ca: options.caFingerprint,
  });
}

/** The token text for its fields. */
export function encodeEnrollment(token: EnrollmentToken): string {
  const json = JSON.stringify({ s: token.stack, i: token.instance, k: token.secret, ca: token.ca });
  return enrollmentPrefix + Buffer.from(json).toString("base64url");
}

/**
 * Decodes a token; throws ENROLL_REFUSED when it is not one.
 *
 * @example decodeEnrollment(token).instance // "web1"
 */
export function decodeEnrollment(token: string): EnrollmentToken {
  const refused = () =>
    new GalleyError("ENROLL_REFUSED", "the enrollment token is not a Galley enrollment token", {
      hint: "copy the whole token that galley agent token printed (it starts with gle1_)",
    });
  if (!token.startsWith(enrollmentPrefix) || token.length > 4096) throw refused();
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(token.slice(enrollmentPrefix.length), "base64url").toString("utf8"));
  } catch {
    throw refused();
  }
  const { s, i, k, ca } = (typeof data === "object" && data !== null ? data : {}) as Record<string, unknown>;
  if (typeof s !== "string" || typeof i !== "string" || typeof k !== "string" || typeof ca !== "string")
    throw refused();
  if (!s || !i || !/^[A-Za-z0-9_-]{43}$/.test(k) || !/^[0-9a-f]{64}$/.test(ca)) throw refused();
  return { stack: s, instance: i, secret: k, ca };
}

/** Whether a PEM is an ed25519 public key (spki): the only key an agent may enroll. */
export function isEd25519PublicKey(pem: string): boolean {
  try {
    const key = createPublicKey(pem);
    return key.type === "public" && key.asymmetricKeyType === "ed25519";
  } catch {
    return false;
  }
}

/** sha256 hex of a PEM certificate's DER: the CA fingerprint a token names and an agent pins. */
export function certificateFingerprint(pem: string): string {
  return createHash("sha256").update(new X509Certificate(pem).raw).digest("hex");
}
