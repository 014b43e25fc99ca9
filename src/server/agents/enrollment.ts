import { GalleyError } from "../../core/errors.ts";
import { decodeEnrollment, isEd25519PublicKey, secretHash } from "../../fleet/agent-enrollment.ts";

// Enrollment on the server: a one-time token (src/fleet/agent-enrollment.ts mints and decodes
// them) becomes an agent's registered key.

export {
  certificateFingerprint,
  decodeEnrollment,
  encodeEnrollment,
  mintEnrollment,
  secretHash,
} from "../../fleet/agent-enrollment.ts";

/** What enrolling needs of the store. */
export interface EnrollStore {
  consumeEnrollment(hash: string, now: string): Promise<{ stack: string; instance: string } | undefined>;
  registerAgent(input: {
    stack: string;
    instance: string;
    publicKey: string;
  }): Promise<{ generation: number }>;
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
    throw new GalleyError(
      "ENROLL_REFUSED",
      "the enrollment token was made by another Galley server (its CA differs)",
      {
        hint: "mint a token on this server: galley agent token --stack STACK INSTANCE",
      },
    );
  }
  if (!isEd25519PublicKey(request.publicKey)) {
    throw new GalleyError(
      "ENROLL_REFUSED",
      "the agent's public key is not an ed25519 public key (spki PEM)",
      {
        hint: "galley agent enroll makes the right key; a key file of your own must be ed25519",
      },
    );
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
