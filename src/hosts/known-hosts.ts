import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { writeFileAtomic } from "./atomic-write.ts";

/** One key line of a known_hosts file (OpenSSH's sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"). */
export interface KnownHostEntry {
  line: number;
  marker: "revoked" | "cert-authority" | undefined;
  /** the host field: a `|1|salt|hash` hash, or comma-separated patterns */
  hosts: string;
  keyType: string;
  /** the key blob, base64 as written in the file */
  key: string;
}

/** What known_hosts says of a key a host presented. */
export type HostKeyVerdict =
  | { status: "known"; line: number }
  | { status: "unknown" }
  | { status: "changed"; line: number; recordedType: string; recordedFingerprint: string }
  | { status: "revoked"; line: number };

/** Parses known_hosts text; comments, blank and malformed lines are skipped as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split("\n").forEach((raw, index) => {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === "" || fields[0]?.startsWith("#")) return;
    let marker: KnownHostEntry["marker"];
    if (fields[0] === "@revoked" || fields[0] === "@cert-authority") {
      marker = fields[0] === "@revoked" ? "revoked" : "cert-authority";
      fields.shift();
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key) return;
    entries.push({ line: index + 1, marker, hosts, keyType, key });
  });
  return entries;
}

/** How OpenSSH names a host in known_hosts: `addr` on port 22, else `[addr]:port`. */
export function knownHostName(address: string, port: number): string {
  return port === 22 ? address : `[${address}]:${port}`;
}

/** Whether an entry's host field names `name` (hashed, wildcard and negated patterns included). */
export function entryMatches(hosts: string, name: string): boolean {
  if (hosts.startsWith("|1|")) return hashedMatches(hosts, name);
  let matched = false;
  for (const pattern of hosts.split(",")) {
    const negated = pattern.startsWith("!");
    if (!globMatches(negated ? pattern.slice(1) : pattern, name.toLowerCase())) continue;
    // a matching negation wins over every positive pattern
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function hashedMatches(hosts: string, name: string): boolean {
  const [, , salt, hash] = hosts.split("|");
  if (!salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function globMatches(pattern: string, name: string): boolean {
  const source = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${source}$`).test(name);
}

/** A hashed host field for `name`, as `ssh-keygen -H` writes it. */
export function hashHostName(name: string, salt = randomBytes(20)): string {
  const hash = createHmac("sha1", salt).update(name).digest("base64");
  return `|1|${salt.toString("base64")}|${hash}`;
}

/** The type name inside an SSH key blob, e.g. "ssh-ed25519". */
export function keyBlobType(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString("latin1");
}

/** OpenSSH's fingerprint of a key blob: SHA256, base64 without padding. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/**
 * Checks a presented key against the entries for `name`. A revoked key is refused wherever it is
 * listed; a recorded key of the same type that differs, or only keys of other types, is a change.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], name: string, blob: Buffer): HostKeyVerdict {
  const presented = blob.toString("base64");
  const revoked = entries.find((e) => e.marker === "revoked" && e.key === presented);
  if (revoked) return { status: "revoked", line: revoked.line };
  const forHost = entries.filter((e) => e.marker === undefined && entryMatches(e.hosts, name));
  const same = forHost.find((e) => e.key === presented);
  if (same) return { status: "known", line: same.line };
  const type = keyBlobType(blob);
  const recorded = forHost.find((e) => e.keyType === type) ?? forHost[0];
  if (!recorded) return { status: "unknown" };
  return {
    status: "changed",
    line: recorded.line,
    recordedType: recorded.keyType,
    recordedFingerprint: fingerprint(Buffer.from(recorded.key, "base64")),
  };
}

/** The key types recorded for `name`, to offer them first in key exchange as OpenSSH does. */
export function recordedKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  const types = entries
    .filter((e) => e.marker === undefined && entryMatches(e.hosts, name))
    .map((e) => e.keyType);
  return [...new Set(types)];
}

/** The entries of a known_hosts file; a missing file has none. */
export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await fs.readFile(file, "utf8"));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
}

// hosts connecting at once (a fleet run) append to the same file: one writer at a time
const appending = new Map<string, Promise<unknown>>();

/**
 * Appends `name keytype base64` to a known_hosts file atomically (temp file + rename), creating the
 * file (0600) and its directory (0700) when missing. Nothing is added when the key is already there.
 */
export function appendKnownHost(file: string, name: string, blob: Buffer): Promise<void> {
  const previous = appending.get(file) ?? Promise.resolve();
  const next = previous.catch(() => {}).then(() => appendNow(file, name, blob));
  appending.set(file, next);
  void next
    .finally(() => {
      if (appending.get(file) === next) appending.delete(file);
    })
    .catch(() => {});
  return next;
}

async function appendNow(link: string, name: string, blob: Buffer): Promise<void> {
  // a known_hosts that is a symlink (dotfiles) stays one: the file it points to is replaced
  const file = await fs.realpath(link).catch(() => link);
  let text = "";
  let mode = 0o600;
  try {
    text = await fs.readFile(file, "utf8");
    mode = (await fs.stat(file)).mode & 0o777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  }
  if (checkHostKey(parseKnownHosts(text), name, blob).status === "known") return;
  const line = `${name} ${keyBlobType(blob)} ${blob.toString("base64")}\n`;
  const content = text === "" || text.endsWith("\n") ? text + line : `${text}\n${line}`;
  await writeFileAtomic(file, content, { mode });
}
