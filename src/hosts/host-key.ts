import { GalleyError } from "../core/errors.ts";
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  keyBlobType,
  knownHostName,
  readKnownHosts,
  recordedKeyTypes,
} from "./known-hosts.ts";
import type { Endpoint } from "./ssh-connect.ts";

type ServerHostKeyAlgorithm =
  | "ssh-ed25519"
  | "ecdsa-sha2-nistp256"
  | "ecdsa-sha2-nistp384"
  | "ecdsa-sha2-nistp521"
  | "rsa-sha2-512"
  | "rsa-sha2-256"
  | "ssh-rsa";

/** ssh2's default order of host key algorithms. */
const defaultAlgorithms: ServerHostKeyAlgorithm[] = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/** The host key check of one connection attempt: ssh2's verifier, and why it refused, if it did. */
export interface HostKeyCheck {
  verifier: (key: Buffer, verify: (ok: boolean) => void) => void;
  /** host key algorithms with those known_hosts records for the host first, as OpenSSH orders them */
  algorithms: ServerHostKeyAlgorithm[];
  failure(): GalleyError | undefined;
}

/**
 * Checks the key a host presents against its known_hosts file: a known key passes; an unknown one
 * is refused (strict) or recorded (accept-new); a changed or revoked one is always refused.
 */
export async function verifyHostKey(
  endpoint: Endpoint,
  onStatus?: (status: string) => void,
): Promise<HostKeyCheck> {
  const file = endpoint.knownHostsFile;
  let entries: Awaited<ReturnType<typeof readKnownHosts>>;
  try {
    entries = await readKnownHosts(file);
  } catch (error) {
    throw new GalleyError(
      "HOST_KEY_UNKNOWN",
      `cannot read the known_hosts file ${file}: ${(error as Error).message}`,
      {
        hint: "fix known_hosts_file in the inventory, or the file's permissions",
      },
    );
  }
  const name = knownHostName(endpoint.address, endpoint.port);
  let failure: GalleyError | undefined;
  const verifier = (key: Buffer, verify: (ok: boolean) => void) => {
    const verdict = checkHostKey(entries, name, key);
    const presented = `${keyBlobType(key)} ${fingerprint(key)}`;
    const host = `${endpoint.label} (${name})`;
    if (verdict.status === "known") return verify(true);
    if (verdict.status === "unknown" && endpoint.hostKeyChecking === "accept-new") {
      appendKnownHost(file, name, key).then(
        () => {
          onStatus?.(`recorded the host key of ${host} in ${file}: ${presented}`);
          verify(true);
        },
        (error: Error) => {
          failure = new GalleyError(
            "HOST_KEY_UNKNOWN",
            `cannot record the host key of ${host} in ${file}: ${error.message}`,
            {
              hint: "make the known_hosts file (and its directory) writable",
            },
          );
          verify(false);
        },
      );
      return;
    }
    failure = refusal(verdict, host, presented, file, name, endpoint);
    verify(false);
  };
  return { verifier, algorithms: preferred(recordedKeyTypes(entries, name)), failure: () => failure };
}

function refusal(
  verdict: Exclude<ReturnType<typeof checkHostKey>, { status: "known" }>,
  host: string,
  presented: string,
  file: string,
  name: string,
  endpoint: Endpoint,
): GalleyError {
  if (verdict.status === "unknown") {
    const port = endpoint.port === 22 ? "" : `-p ${endpoint.port} `;
    const type = presented.split(" ")[0];
    return new GalleyError(
      "HOST_KEY_UNKNOWN",
      `the host key of ${host} is not in ${file}: it presents ${presented}`,
      {
        hint: `check that fingerprint with the host's owner, then record it: ssh-keyscan ${port}-t ${type} ${endpoint.address} >> ${file} (or set host_key_checking: accept-new to record keys on first use)`,
      },
    );
  }
  if (verdict.status === "revoked") {
    return new GalleyError(
      "HOST_KEY_CHANGED",
      `${host} presents ${presented}, a key marked @revoked at ${file}:${verdict.line}`,
      {
        hint: "the host must get a new host key; do not connect to it with the revoked one",
      },
    );
  }
  return new GalleyError(
    "HOST_KEY_CHANGED",
    `the host key of ${host} has changed: it presents ${presented}, but ${file}:${verdict.line} records ${verdict.recordedType} ${verdict.recordedFingerprint}; someone may be intercepting the connection, or the host was reinstalled`,
    {
      hint: `if the change is expected, remove line ${verdict.line} of ${file} (ssh-keygen -R '${name}' -f ${file}) and connect again`,
    },
  );
}

function preferred(types: string[]): ServerHostKeyAlgorithm[] {
  const first = defaultAlgorithms.filter((algorithm) =>
    types.some((type) => type === algorithm || (type === "ssh-rsa" && algorithm.startsWith("rsa-sha2-"))),
  );
  return [...first, ...defaultAlgorithms.filter((algorithm) => !first.includes(algorithm))];
}
