import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as v from "valibot";
import { errorMessage, GalleyError } from "../core/errors.ts";
import { writeFileAtomic } from "../hosts/atomic-write.ts";

/** `<bundle>.sig`: who signed which bundle id, when, and the Ed25519 signature over those three. */
export interface BundleSignature {
  format: 1;
  algorithm: "ed25519";
  /** the signing key's id (keyIdOf its public key): which trusted key checks it */
  keyId: string;
  /** the id of the bundle signed (the sha256 of its bytes) */
  bundle: string;
  /** ISO 8601 time of signing; signed too, so it cannot be moved */
  signedAt: string;
  /** base64 Ed25519 signature of signedMessage(bundle, signedAt) */
  signature: string;
}

/** A public key a host trusts, with its id and where it was read from (for messages). */
export interface TrustedKey {
  id: string;
  key: KeyObject;
  source: string;
}

/** What a verified signature says. */
export interface VerifiedSignature {
  keyId: string;
  signedAt: string;
  /** where the trusted key that verified it came from */
  trustedBy: string;
}

/** The environment variable listing trusted public key files (separated like PATH). */
export const trustEnv = "GALLEY_BUNDLE_TRUST";

const signatureSchema = v.strictObject({
  format: v.literal(1),
  algorithm: v.literal("ed25519"),
  keyId: v.pipe(v.string(), v.regex(/^ed25519:[0-9a-f]{32}$/)),
  bundle: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/)),
  signedAt: v.pipe(v.string(), v.isoTimestamp()),
  signature: v.pipe(v.string(), v.base64()),
});

/** The signature file of a bundle: `<bundle file>.sig`. */
export function signatureFileOf(bundleFile: string): string {
  return `${bundleFile}.sig`;
}

/** A key's id: `ed25519:` and the first 32 hex digits of the sha256 of its raw 32-byte public key. */
export function keyIdOf(key: KeyObject): string {
  const publicKey = key.type === "private" ? createPublicKey(key) : key;
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x ?? "", "base64url");
  return `ed25519:${createHash("sha256").update(raw).digest("hex").slice(0, 32)}`;
}

// domain-separated: a signature made for a bundle can never be passed off as one for anything else
function signedMessage(bundle: string, signedAt: string): Buffer {
  return Buffer.from(`galley bundle signature 1\n${bundle}\n${signedAt}\n`);
}

/**
 * Signs a bundle id with an Ed25519 private key (pure: no files).
 *
 * @example signBundle(id, await readSigningKey("team.key"), new Date())
 */
export function signBundle(bundleId: string, privateKey: KeyObject, at: Date = new Date()): BundleSignature {
  const signedAt = at.toISOString();
  const signature = sign(null, signedMessage(bundleId, signedAt), privateKey).toString("base64");
  return {
    format: 1,
    algorithm: "ed25519",
    keyId: keyIdOf(privateKey),
    bundle: bundleId,
    signedAt,
    signature,
  };
}

/**
 * Checks that `signature` (a parsed `<bundle>.sig`, or undefined when there is none) signs exactly
 * `bundleId` with one of `trustedKeys`. Pure, so a server or an agent can call it on what it receives.
 * Refuses with BUNDLE_UNTRUSTED: no signature, a malformed one, one for another bundle, one by a key
 * not trusted, one that does not verify. `label` names the bundle in messages (its file, by default its id).
 *
 * @example verifyBundleSignature(id, JSON.parse(sigText), await readTrustedKeys(["team.key.pub"]))
 */
export function verifyBundleSignature(
  bundleId: string,
  signature: unknown,
  trustedKeys: readonly TrustedKey[],
  label = bundleId,
): VerifiedSignature {
  const trusted = trustedKeys.map((k) => k.id).join(", ") || "none";
  if (signature === undefined) {
    throw untrusted(
      `bundle ${label} is not signed, and this host trusts only bundles signed by ${trusted}`,
      "sign it with a trusted key: galley bundle sign FILE --sign-key KEY (writes FILE.sig, which travels with the bundle)",
    );
  }
  const parsed = v.safeParse(signatureSchema, signature);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    throw untrusted(
      `the signature of bundle ${label} is malformed (${v.getDotPath(issue) ?? "root"}: ${issue.message})`,
      "sign the bundle again: galley bundle sign FILE --sign-key KEY",
    );
  }
  const sig = parsed.output;
  if (sig.bundle !== bundleId) {
    throw untrusted(
      `the signature beside bundle ${label} is for bundle ${sig.bundle}, not this one (${bundleId}): the bundle was changed after it was signed`,
      "use the bundle that was signed, or review this one and sign it: galley bundle sign FILE --sign-key KEY",
    );
  }
  const key = trustedKeys.find((k) => k.id === sig.keyId);
  if (!key) {
    throw untrusted(
      `bundle ${label} is signed by key ${sig.keyId}, which this host does not trust (trusted: ${trusted})`,
      `if that key is your team's, trust its public key: --trust KEY.pub or ${trustEnv}; else do not run this bundle`,
    );
  }
  const message = signedMessage(sig.bundle, sig.signedAt);
  if (!verify(null, message, key.key, Buffer.from(sig.signature, "base64"))) {
    throw untrusted(
      `the signature of bundle ${label} does not verify with key ${sig.keyId} (${key.source}): it was forged or altered`,
      "do not run this bundle; fetch it and its .sig again from who signed it",
    );
  }
  return { keyId: sig.keyId, signedAt: sig.signedAt, trustedBy: key.source };
}

/**
 * Writes a new Ed25519 key pair: the private key (PKCS#8 PEM, mode 0600) at `keyFile`, the public key
 * (SPKI PEM) at `<keyFile>.pub`. Never overwrites a key.
 */
export async function generateSigningKey(keyFile: string): Promise<{ keyId: string; publicKeyFile: string }> {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const publicKeyFile = `${keyFile}.pub`;
  await fs.mkdir(path.dirname(path.resolve(keyFile)), { recursive: true });
  try {
    await fs.writeFile(keyFile, privateKey.export({ type: "pkcs8", format: "pem" }), {
      mode: 0o600,
      flag: "wx",
    });
  } catch (error) {
    throw keyError(
      (error as NodeJS.ErrnoException).code === "EEXIST"
        ? `${keyFile} already exists: galley never overwrites a key`
        : `cannot write ${keyFile} (${errorMessage(error)})`,
      "choose another --key-file, or remove the old key first if it is truly unused",
    );
  }
  await fs.writeFile(publicKeyFile, publicKey.export({ type: "spki", format: "pem" }), { mode: 0o644 });
  return { keyId: keyIdOf(publicKey), publicKeyFile };
}

/** Reads an Ed25519 private key (PEM) to sign with; SIGNING_KEY_INVALID names the file otherwise. */
export async function readSigningKey(file: string): Promise<KeyObject> {
  const text = await readKeyFile(file);
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch {
    throw keyError(
      `${file} is not a private key`,
      "give the private key galley bundle keygen wrote (not its .pub)",
    );
  }
  if (key.asymmetricKeyType !== "ed25519") {
    throw keyError(
      `${file} is a ${key.asymmetricKeyType} key, not Ed25519`,
      "make one: galley bundle keygen",
    );
  }
  return key;
}

/** Reads trusted public keys (PEM `.pub` files); a private key, or another kind of key, is refused. */
export async function readTrustedKeys(files: readonly string[]): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const file of files) {
    const text = await readKeyFile(file);
    let key: KeyObject | undefined;
    try {
      // only a public key: trusting a private key file would mean copying it to every host
      if (text.includes("PUBLIC KEY-----")) key = createPublicKey(text);
    } catch {}
    if (key?.asymmetricKeyType !== "ed25519") {
      throw keyError(
        `${file} is not an Ed25519 public key`,
        "trust the .pub file galley bundle keygen wrote beside the private key",
      );
    }
    keys.push({ id: keyIdOf(key), key, source: file });
  }
  return keys;
}

/** The trusted key files: the `--trust` files given, then those of GALLEY_BUNDLE_TRUST (a path list). */
export function trustedKeyFiles(given: readonly string[] = [], env: NodeJS.ProcessEnv = process.env) {
  const fromEnv = (env[trustEnv] ?? "").split(path.delimiter).filter((f) => f !== "");
  return [...given, ...fromEnv];
}

/** The parsed `<bundle>.sig`, or undefined when there is none (a malformed one is left to verification). */
export async function readBundleSignature(bundleFile: string): Promise<unknown> {
  const file = signatureFileOf(bundleFile);
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw untrusted(`cannot read ${file} (${errorMessage(error)})`, "check the file's permissions");
  }
  try {
    return JSON.parse(text);
  } catch {
    return { unreadable: file };
  }
}

/** Writes a signature beside its bundle (`<bundle>.sig`), atomically. */
export async function writeBundleSignature(bundleFile: string, signature: BundleSignature): Promise<string> {
  const file = signatureFileOf(bundleFile);
  await writeFileAtomic(file, `${JSON.stringify(signature, null, 2)}\n`, { mode: 0o644 });
  return file;
}

async function readKeyFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, "utf8");
  } catch (error) {
    throw keyError(
      (error as NodeJS.ErrnoException).code === "ENOENT"
        ? `key file ${file} does not exist`
        : `cannot read key file ${file} (${errorMessage(error)})`,
      "make a key pair with galley bundle keygen --key-file FILE",
    );
  }
}

function untrusted(message: string, hint: string): GalleyError {
  return new GalleyError("BUNDLE_UNTRUSTED", message, { hint });
}

function keyError(message: string, hint: string): GalleyError {
  return new GalleyError("SIGNING_KEY_INVALID", message, { hint });
}
