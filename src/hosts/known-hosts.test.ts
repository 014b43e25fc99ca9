import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import {
  appendKnownHost,
  checkHostKey,
  entryMatches,
  fingerprint,
  hashHostName,
  keyBlobType,
  knownHostName,
  parseKnownHosts,
  readKnownHosts,
  recordedKeyTypes,
} from "./known-hosts.ts";

/** A real ed25519 public key blob made by ssh-keygen. */
async function newKey(): Promise<{ blob: Buffer; publicLine: string; file: string }> {
  const file = path.join(await tempDir(), "key");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
  const publicLine = (await fs.readFile(`${file}.pub`, "utf8")).trim();
  return { blob: Buffer.from(publicLine.split(" ")[1]!, "base64"), publicLine, file };
}

test("known_hosts: parses markers, comments, comma lists and skips malformed lines", () => {
  const entries = parseKnownHosts(
    [
      "# comment",
      "",
      "web1,10.0.0.1 ssh-ed25519 AAAA comment here",
      "@revoked * ssh-rsa BBBB",
      "@cert-authority *.example.com ssh-ed25519 CCCC",
      "broken-line-without-key",
      "[db]:2222 ecdsa-sha2-nistp256 DDDD",
    ].join("\n"),
  );
  assert.deepEqual(
    entries.map((e) => [e.line, e.marker, e.hosts, e.keyType, e.key]),
    [
      [3, undefined, "web1,10.0.0.1", "ssh-ed25519", "AAAA"],
      [4, "revoked", "*", "ssh-rsa", "BBBB"],
      [5, "cert-authority", "*.example.com", "ssh-ed25519", "CCCC"],
      [7, undefined, "[db]:2222", "ecdsa-sha2-nistp256", "DDDD"],
    ],
  );
});

test("known_hosts: host names, patterns, negation and [host]:port", () => {
  assert.equal(knownHostName("10.0.0.1", 22), "10.0.0.1");
  assert.equal(knownHostName("10.0.0.1", 2222), "[10.0.0.1]:2222");
  assert.ok(entryMatches("web1,10.0.0.1", "10.0.0.1"));
  assert.ok(entryMatches("*.example.com", "WWW.example.com"));
  assert.ok(entryMatches("web?", "web7"));
  assert.ok(!entryMatches("web?", "web10"));
  assert.ok(!entryMatches("*.example.com,!bad.example.com", "bad.example.com"));
  assert.ok(entryMatches("[10.0.0.1]:2222", "[10.0.0.1]:2222"));
  assert.ok(!entryMatches("10.0.0.1", "[10.0.0.1]:2222"));
  assert.ok(!entryMatches("a.b", "axb"), "a dot is not a wildcard");
});

test("known_hosts: hashed entries match what ssh-keygen -H writes", async () => {
  const { publicLine } = await newKey();
  const file = path.join(await tempDir(), "known_hosts");
  const [type, key] = publicLine.split(" ");
  await fs.writeFile(file, `[192.0.2.9]:2200 ${type} ${key}\nplain.example ${type} ${key}\n`);
  execFileSync("ssh-keygen", ["-H", "-f", file], { stdio: "ignore" });
  const entries = await readKnownHosts(file);
  assert.ok(entries.every((e) => e.hosts.startsWith("|1|")));
  assert.ok(entryMatches(entries[0]!.hosts, "[192.0.2.9]:2200"));
  assert.ok(!entryMatches(entries[0]!.hosts, "192.0.2.9"));
  assert.ok(entryMatches(entries[1]!.hosts, "plain.example"));
  assert.ok(entryMatches(hashHostName("x.example"), "x.example"));
});

test("known_hosts: known, unknown, changed and revoked keys", async () => {
  const a = await newKey();
  const b = await newKey();
  const line = (hosts: string, k: typeof a) => `${hosts} ${k.publicLine.split(" ").slice(0, 2).join(" ")}`;
  const entries = parseKnownHosts(
    [line("host-a", a), line("host-b", b), `@revoked ${line("*", b)}`].join("\n"),
  );
  assert.deepEqual(checkHostKey(entries, "host-a", a.blob), { status: "known", line: 1 });
  assert.deepEqual(checkHostKey(entries, "elsewhere", a.blob), { status: "unknown" });
  assert.deepEqual(checkHostKey(entries, "host-b", b.blob), { status: "revoked", line: 3 });
  const changed = checkHostKey(entries, "host-a", (await newKey()).blob);
  assert.equal(changed.status, "changed");
  assert.equal(changed.status === "changed" && changed.recordedFingerprint, fingerprint(a.blob));
  assert.deepEqual(recordedKeyTypes(entries, "host-a"), ["ssh-ed25519"]);
  // a @cert-authority line is no key of the host
  const ca = parseKnownHosts(`@cert-authority ${line("host-c", a)}`);
  assert.deepEqual(checkHostKey(ca, "host-c", a.blob), { status: "unknown" });
});

test("known_hosts: fingerprints are what ssh-keygen -l prints", async () => {
  const key = await newKey();
  const printed = execFileSync("ssh-keygen", ["-l", "-f", `${key.file}.pub`], { encoding: "utf8" });
  assert.equal(fingerprint(key.blob), printed.split(" ")[1]);
  assert.equal(keyBlobType(key.blob), "ssh-ed25519");
});

test("known_hosts: appends atomically, once, keeping the rest of the file; parallel appends all land", async () => {
  const dir = await tempDir();
  const file = path.join(dir, "sub", "known_hosts");
  const keys = await Promise.all(Array.from({ length: 5 }, () => newKey()));
  await Promise.all(keys.map((k, i) => appendKnownHost(file, `[10.0.0.${i}]:2222`, k.blob)));
  await appendKnownHost(file, "[10.0.0.0]:2222", keys[0]!.blob);
  const entries = await readKnownHosts(file);
  assert.equal(entries.length, 5);
  for (const [i, k] of keys.entries())
    assert.equal(checkHostKey(entries, `[10.0.0.${i}]:2222`, k.blob).status, "known");
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
  // a file without a final newline gets one before the new line
  const other = path.join(dir, "other");
  await fs.writeFile(other, "# kept", { mode: 0o644 });
  await appendKnownHost(other, "h", keys[0]!.blob);
  const text = await fs.readFile(other, "utf8");
  assert.match(text, /^# kept\nh ssh-ed25519 \S+\n$/);
  assert.equal((await fs.stat(other)).mode & 0o777, 0o644);
  assert.deepEqual((await fs.readdir(dir)).sort(), ["other", "sub"]);
});
