import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { serverBase } from "./enroll.ts";
import { agentRequest, answerError } from "./https.ts";
import { Peer, testCertificates } from "./testing.ts";

test("requests pin the server's CA: the right one answers, another CA is refused with what to check", async (t) => {
  const dir = await tempDir();
  const tls = await testCertificates(path.join(dir, "ours"));
  const other = await testCertificates(path.join(dir, "theirs"));
  const peer = new Peer(tls);
  await peer.listen();
  t.after(() => peer.close());
  const ok = await agentRequest(`${peer.url}/v1/ca.pem`, { ca: tls.ca });
  assert.equal(ok.status, 200);
  assert.equal(ok.body.toString(), tls.ca);
  await assert.rejects(
    agentRequest(`${peer.url}/v1/ca.pem`, { ca: other.ca }),
    (error: Error & { code?: string }) => {
      assert.equal(error.code, "HOST_UNREACHABLE");
      assert.match(error.message, /is not the one this agent pins/);
      return true;
    },
  );
  const missing = await agentRequest(`${peer.url}/v1/nothing`, { ca: tls.ca });
  assert.deepEqual(answerError(missing), { code: "NOT_FOUND", message: "no route" });
  assert.deepEqual(answerError({ status: 502, body: Buffer.from("<html>") }), {
    code: "HTTP_502",
    message: "the server answered HTTP 502",
  });
});

test("the server URL: https only, its origin kept", () => {
  assert.equal(serverBase("https://galley.example:8443/"), "https://galley.example:8443");
  assert.equal(serverBase("https://galley.example:8443/some/path"), "https://galley.example:8443");
  assert.throws(() => serverBase("http://galley.example"), { code: "USAGE" });
  assert.throws(() => serverBase("galley.example"), { code: "USAGE" });
});
