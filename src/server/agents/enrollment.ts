import { createHash, createPublicKey, randomBytes } from "node:crypto";
import { GalleyError } from "../../core/errors.ts";

// One-time enrollment tokens: `gle1_` + base64url(JSON {s: stack, i: instance, k: secret, ca: CA
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

/** What enrolling needs of the store. */
export interface EnrollStore {
  consumeEnrollment(hash: string, now: string): Promise<{ stack: string; instance: string } | undefined>;
  registerAgent(input: { stack: string; instance: string; publicKey: string }): Promise<{ generation: number }>;
}

/**
 * Enrolls an agent: checks the token (its form, this server's CA, unused and unexpired: consumed
 * at once) and the key (ed25519), then records the key. Throws ENROLL_REFUSED. The form, the CA
 * and the key are checked before the token is consumed: a malformed request spends nothing.
 *
 * @example await enrollAgent(store, { token, publicKey }, caFingerprint) // { stack: "prod", instance: "web1", generation: 1 }
 */
export async function enrollAgent(
  store: EnrollStore,
  request: { token: string; publicKey: string },
  caFingerprint: string,
  now = new Date(),
): Promise<{ stack: string; instance: string; generation: number }> {
  const token = decodeEnrollment(request.token);
  if (token.ca !== caFingerprint) {
    throw new GalleyError("ENROLL_REFUSED", "the enrollment token was made by another Galley server (its CA differs)", {
      hint: "mint a token on this server: galley agent token --stack STACK INSTANCE",
    });
  }
  if (!isEd25519PublicKey(request.publicKey)) {
    throw new GalleyError("ENROLL_REFUSED", "the agent's public key is not an ed25519 public key (spki PEM)", {
      hint: "galley agent enroll makes the right key; a key file of your own must be ed25519",
    });
  }
  const claimed = await store.consumeEnrollment(secretHash(token.secret), now.toISOString());
  if (!claimed || claimed.stack !== token.stack || claimed.instance !== token.instance) {
    throw new GalleyError(
      "ENROLL_REFUSED",
      `the enrollment token of ${token.stack}/${token.instance} is used, expired or unknown`,
      { hint: `mint a new one: galley agent token --stack ${token.stack} ${token.instance}` },
    );
  }
  const agent = await store.registerAgent({ ...claimed, publicKey: request.publicKey });
  return { ...claimed, generation: agent.generation };
}
