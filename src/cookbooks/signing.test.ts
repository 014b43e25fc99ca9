import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import {
  generateSigningKey,
  keyIdOf,
  readSigningKey,
  readTrustedKeys,
  signBundle,
  trustedKeyFiles,
  verifyBundleSignature,
} from "./signing.ts";

const id = "a".repeat(64);
const other = "b".repeat(64);

function refused(run: () => unknown, code: string, message: RegExp) {
  assert.throws(run, (error: Error & { code?: string }) => {
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

async function keys() {
  const dir = await tempDir();
  const team = await generateSigningKey(path.join(dir, "team.key"));
  const foreign = await generateSigningKey(path.join(dir, "foreign.key"));
  return {
    dir,
    team,
    foreign,
    teamKey: await readSigningKey(path.join(dir, "team.key")),
    foreignKey: await readSigningKey(path.join(dir, "foreign.key")),
    trusted: await readTrustedKeys([team.publicKeyFile]),
  };
}

test("keygen: a private key 0600 and its .pub; never overwrites a key", async () => {
  const { dir, team, teamKey, trusted } = await keys();
  const file = path.join(dir, "team.key");
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  assert.equal(team.publicKeyFile, `${file}.pub`);
  assert.match(await fs.readFile(team.publicKeyFile, "utf8"), /^-----BEGIN PUBLIC KEY-----/);
  assert.match(team.keyId, /^ed25519:[0-9a-f]{32}$/);
  assert.equal(keyIdOf(teamKey), team.keyId);
  assert.equal(trusted[0]!.id, team.keyId);
  const before = await fs.readFile(file, "utf8");
  await assert.rejects(generateSigningKey(file), { code: "SIGNING_KEY_INVALID", message: /already exists/ });
  assert.equal(await fs.readFile(file, "utf8"), before);
});

test("verifyBundleSignature: a signature by a trusted key over this id verifies", async () => {
  const { team, teamKey, trusted } = await keys();
  const at = new Date("2026-01-02T03:04:05.000Z");
  const signature = signBundle(id, teamKey, at);
  assert.deepEqual(Object.keys(signature), [
    "format",
    "algorithm",
    "keyId",
    "bundle",
    "signedAt",
    "signature",
  ]);
  // what travels is JSON: verify what was serialized and read back
  const verified = verifyBundleSignature(id, JSON.parse(JSON.stringify(signature)), trusted);
  assert.deepEqual(verified, {
    keyId: team.keyId,
    signedAt: at.toISOString(),
    trustedBy: team.publicKeyFile,
  });
});

test("verifyBundleSignature: unsigned, foreign, for another bundle, altered, forged or malformed is BUNDLE_UNTRUSTED", async () => {
  const { team, foreign, teamKey, foreignKey, trusted } = await keys();
  refused(
    () => verifyBundleSignature(id, undefined, trusted, "x.tgz"),
    "BUNDLE_UNTRUSTED",
    /x\.tgz is not signed/,
  );
  refused(
    () => verifyBundleSignature(id, signBundle(id, foreignKey), trusted),
    "BUNDLE_UNTRUSTED",
    new RegExp(`signed by key ${foreign.keyId}, which this host does not trust \\(trusted: ${team.keyId}\\)`),
  );
  // a bundle changed after signing: the old signature names the old id
  refused(
    () => verifyBundleSignature(other, signBundle(id, teamKey), trusted),
    "BUNDLE_UNTRUSTED",
    /is for bundle a{64}, not this one \(b{64}\): the bundle was changed after it was signed/,
  );
  // the id in the signature rewritten to the new bundle's: the signature no longer verifies
  refused(
    () => verifyBundleSignature(other, { ...signBundle(id, teamKey), bundle: other }, trusted),
    "BUNDLE_UNTRUSTED",
    /does not verify with key .*: it was forged or altered/,
  );
  // the time is signed too
  const moved = { ...signBundle(id, teamKey), signedAt: "2030-01-01T00:00:00.000Z" };
  refused(() => verifyBundleSignature(id, moved, trusted), "BUNDLE_UNTRUSTED", /forged or altered/);
  // a foreign key claiming the trusted key's id
  const forged = { ...signBundle(id, foreignKey), keyId: team.keyId };
  refused(() => verifyBundleSignature(id, forged, trusted), "BUNDLE_UNTRUSTED", /forged or altered/);
  refused(
    () => verifyBundleSignature(id, { ...signBundle(id, teamKey), algorithm: "rsa" }, trusted),
    "BUNDLE_UNTRUSTED",
    /malformed \(algorithm/,
  );
  refused(() => verifyBundleSignature(id, "junk", trusted), "BUNDLE_UNTRUSTED", /malformed/);
  refused(() => verifyBundleSignature(id, signBundle(id, teamKey), []), "BUNDLE_UNTRUSTED", /trusted: none/);
});

test("trusted keys: only Ed25519 public keys; missing files and private keys are SIGNING_KEY_INVALID", async () => {
  const { dir } = await keys();
  await assert.rejects(readTrustedKeys([path.join(dir, "team.key")]), {
    code: "SIGNING_KEY_INVALID",
    message: /team\.key is not an Ed25519 public key/,
  });
  await assert.rejects(readTrustedKeys([path.join(dir, "nope.pub")]), {
    code: "SIGNING_KEY_INVALID",
    message: /nope\.pub does not exist/,
  });
  const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 });
  await fs.writeFile(path.join(dir, "rsa.pub"), rsa.publicKey.export({ type: "spki", format: "pem" }));
  await assert.rejects(readTrustedKeys([path.join(dir, "rsa.pub")]), { code: "SIGNING_KEY_INVALID" });
  await assert.rejects(readSigningKey(path.join(dir, "team.key.pub")), {
    code: "SIGNING_KEY_INVALID",
    message: /is not a private key/,
  });
  assert.deepEqual(
    trustedKeyFiles(["a.pub"], { GALLEY_BUNDLE_TRUST: `b.pub${path.delimiter}${path.delimiter}c.pub` }),
    ["a.pub", "b.pub", "c.pub"],
  );
  assert.deepEqual(trustedKeyFiles([], {}), []);
});
