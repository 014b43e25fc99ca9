import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { caFingerprint, ensureTls, serverNames } from "./tls.ts";

function dataDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), "galley-tls-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("first start makes a CA and a server certificate it signed, with the names asked for", async (t) => {
  const dir = dataDir(t);
  const tls = await ensureTls(dir, serverNames("10.1.2.3", ["galley.example.test"]));
  const ca = new X509Certificate(tls.caPem);
  const cert = new X509Certificate(readFileSync(path.join(dir, "tls/server.pem")));
  assert.ok(ca.ca);
  assert.ok(cert.verify(ca.publicKey));
  assert.equal(cert.checkIssued(ca), true);
  for (const name of ["localhost", "127.0.0.1", "::1", "10.1.2.3", "galley.example.test"])
    assert.ok(tls.sans.includes(name), name);
  assert.match(cert.subjectAltName ?? "", /IP Address:10\.1\.2\.3/);
  assert.match(cert.subjectAltName ?? "", /DNS:galley\.example\.test/);
  assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  const years = (Date.parse(ca.validTo) - Date.now()) / (365 * 86_400_000);
  assert.ok(years > 9.9 && years < 10.1, `CA for ${years} years`);
  assert.equal(tls.caFingerprint, caFingerprint(tls.caPem));
  assert.match(tls.caFingerprint, /^[0-9a-f]{64}$/);
});

test("a restart reuses both; a new name or a near end re-issues the server certificate from the same CA", async (t) => {
  const dir = dataDir(t);
  const first = await ensureTls(dir, serverNames(undefined));
  const again = await ensureTls(dir, serverNames(undefined));
  assert.equal(again.cert, first.cert);
  assert.equal(again.key, first.key);
  const named = await ensureTls(dir, serverNames(undefined, ["new.example.test"]));
  assert.equal(named.caPem, first.caPem);
  assert.notEqual(named.cert, first.cert);
  assert.ok(named.sans.includes("new.example.test"));
  // 340 days on, the certificate (one year) ends within 30 days: a new one from the same CA
  const later = await ensureTls(
    dir,
    serverNames(undefined, ["new.example.test"]),
    new Date(Date.now() + 340 * 86_400_000),
  );
  assert.equal(later.caFingerprint, first.caFingerprint);
  assert.notEqual(later.cert, named.cert);
  const cert = new X509Certificate(later.cert);
  assert.ok(cert.checkIssued(new X509Certificate(first.caPem)));
});
