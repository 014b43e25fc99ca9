import { createHash, X509Certificate as NodeCertificate, webcrypto } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import * as path from "node:path";
import "./reflect-metadata.ts"; // before @peculiar/x509
import * as x509 from "@peculiar/x509";
import { errorMessage, GalleyError } from "../core/errors.ts";

// The server's own CA: made on first start, kept for ten years, pinned by every agent and CLI (by
// its fingerprint). The server certificate it signs lives a year and is re-issued from the same CA
// when it nears its end or lacks a name asked for, so that nobody has to trust anything new.

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const algorithm = { name: "ECDSA", namedCurve: "P-256" } as const;
const signingAlgorithm = { name: "ECDSA", hash: "SHA-256" } as const;
const day = 24 * 60 * 60_000;
/** a server certificate closer than this to its end is re-issued */
export const renewBeforeMs = 30 * day;

/** The server's TLS material: key and certificate for HTTPS, and the CA clients pin. */
export interface ServerTls {
  /** PEM (pkcs8) of the server certificate's key */
  key: string;
  /** PEM of the server certificate, then the CA's (the chain) */
  cert: string;
  caPem: string;
  caFingerprint: string;
  /** the server certificate's subject alternative names */
  sans: string[];
}

/** sha256 hex of a PEM certificate's DER: what agents and CLIs pin. */
export function caFingerprint(pem: string): string {
  return createHash("sha256").update(new NodeCertificate(pem).raw).digest("hex");
}

/** The names a server certificate carries: localhost, loopbacks, the host's name, the listen address, extras. */
export function serverNames(listenHost: string | undefined, extra: readonly string[] = []): string[] {
  const names = ["localhost", "127.0.0.1", "::1", hostname(), ...extra];
  if (listenHost !== undefined && listenHost !== "0.0.0.0" && listenHost !== "::" && listenHost !== "")
    names.push(listenHost);
  return [...new Set(names.map((n) => n.replace(/^\[(.*)\]$/, "$1")))];
}

/**
 * Loads the server's TLS files from `<dataDir>/tls/`, making the CA on first start and (re-)issuing
 * the server certificate when it is missing, expires within 30 days or lacks one of `sans`.
 *
 * @example const tls = await ensureTls(dataDir, serverNames("10.0.0.5", ["galley.example"]))
 */
export async function ensureTls(
  dataDir: string,
  sans: readonly string[],
  now = new Date(),
): Promise<ServerTls> {
  const dir = path.join(dataDir, "tls");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const files = {
    caKey: path.join(dir, "ca.key"),
    ca: path.join(dir, "ca.pem"),
    key: path.join(dir, "server.key"),
    cert: path.join(dir, "server.pem"),
  };
  try {
    let caPem: string;
    let caKey: CryptoKey;
    if (existsSync(files.ca) && existsSync(files.caKey)) {
      caPem = readFileSync(files.ca, "utf8");
      caKey = await importKey(readFileSync(files.caKey, "utf8"));
    } else {
      const made = await makeCa(now);
      caPem = made.pem;
      caKey = made.keys.privateKey;
      writePrivate(files.caKey, await exportKey(caKey));
      writePrivate(files.ca, caPem);
    }
    const ca = new x509.X509Certificate(caPem);
    let key = existsSync(files.key) ? readFileSync(files.key, "utf8") : undefined;
    let certPem = existsSync(files.cert) ? readFileSync(files.cert, "utf8") : undefined;
    if (key === undefined || certPem === undefined || (await needsReissue(certPem, ca, sans, now))) {
      const issued = await issueServerCert(ca, caKey, sans, now);
      key = issued.key;
      certPem = issued.pem;
      writePrivate(files.key, key);
      writePrivate(files.cert, certPem);
    }
    return {
      key,
      cert: `${certPem.trim()}\n${caPem.trim()}\n`,
      caPem,
      caFingerprint: caFingerprint(caPem),
      sans: certNames(certPem),
    };
  } catch (error) {
    throw new GalleyError(
      "TLS_INVALID",
      `the server's TLS files in ${dir} are unusable: ${errorMessage(error)}`,
      {
        hint: `move ${dir} away to make a new CA (every agent and CLI must then be enrolled or logged in again)`,
        cause: error,
      },
    );
  }
}

async function makeCa(now: Date): Promise<{ pem: string; keys: CryptoKeyPair }> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=Galley server CA ${hostname()}`,
    notBefore: new Date(now.getTime() - 60 * 60_000),
    notAfter: new Date(now.getTime() + 3650 * day),
    signingAlgorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { pem: cert.toString("pem"), keys };
}

async function issueServerCert(
  ca: x509.X509Certificate,
  caKey: CryptoKey,
  sans: readonly string[],
  now: Date,
): Promise<{ pem: string; key: string }> {
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
  const names = sans.map((value) => ({
    type: isIP(value) === 0 ? ("dns" as const) : ("ip" as const),
    value,
  }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=Galley server",
    issuer: ca.subject,
    notBefore: new Date(now.getTime() - 60 * 60_000),
    notAfter: new Date(now.getTime() + 365 * day),
    signingAlgorithm,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  return { pem: cert.toString("pem"), key: await exportKey(keys.privateKey) };
}

async function needsReissue(
  pem: string,
  ca: x509.X509Certificate,
  sans: readonly string[],
  now: Date,
): Promise<boolean> {
  const cert = new x509.X509Certificate(pem);
  if (cert.notAfter.getTime() - now.getTime() < renewBeforeMs) return true;
  if (!(await cert.verify({ publicKey: ca.publicKey, signatureOnly: true }))) return true;
  const have = new Set(certNames(pem));
  return sans.some((name) => !have.has(name));
}

function certNames(pem: string): string[] {
  const san = new x509.X509Certificate(pem).getExtension(x509.SubjectAlternativeNameExtension);
  return san === null ? [] : san.names.items.map((n) => n.value);
}

async function exportKey(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

async function importKey(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (der === undefined) throw new Error("the CA key file holds no PEM block");
  return (await webcrypto.subtle.importKey("pkcs8", der, algorithm, true, ["sign"])) as CryptoKey;
}

function serial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive
  return Buffer.from(bytes).toString("hex");
}

/** Writes a file readable by its owner only (write then rename: never a half-written key). */
export function writePrivate(file: string, content: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
