import * as v from "valibot";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { LocalHost } from "../hosts/local.ts";
import { remoteFile } from "./remote_file.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

const host = new LocalHost();

const content = "release 1.2.3\n";
const checksum = sha(content);
const requests: string[] = [];
let base = "";

function sha(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function serve(request: http.IncomingMessage, response: http.ServerResponse): void {
  requests.push(request.url ?? "");
  if (request.url === "/file.txt") return void response.end(content);
  if (request.url === "/moved") return void response.writeHead(302, { location: "/file.txt" }).end();
  if (request.url === "/private" && request.headers["x-token"] === "s3cret")
    return void response.end(content);
  if (request.url === "/private") return void response.writeHead(403).end("forbidden");
  response.writeHead(404).end("not found");
}

const server = http.createServer(serve);
before(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => server.close());

/** read, diff and apply once, as the engine does. */
async function converge(props: Record<string, unknown>, stateDir = "/nonexistent") {
  const desired = await prepare(remoteFile, props);
  const current = await remoteFile.read(host, desired);
  const changes = remoteFile.diff(current, desired, "create");
  if (changes.length > 0) await remoteFile.apply(host, desired, "create", current, { stateDir });
  return changes;
}

test("remote_file: downloads once, then changes nothing and downloads nothing", async () => {
  const target = path.join(await tempDir("galley-t-remote-"), "release.txt");
  const count = requests.length;
  const changes = await convergeTwice(host, remoteFile, {
    path: target,
    source: `${base}/file.txt`,
    checksum,
    mode: "0640",
  });
  assert.deepEqual(changes, [
    { property: "ensure", from: "absent", to: "file" },
    { property: "content", from: undefined, to: `sha256:${checksum.slice(0, 12)}` },
    { property: "mode", from: undefined, to: "0640" },
  ]);
  assert.equal(await fs.readFile(target, "utf8"), content);
  assert.equal((await fs.stat(target)).mode & 0o777, 0o640);
  assert.equal(requests.length - count, 1, "read never downloads");
});

test("remote_file: follows redirects and sends headers", async () => {
  const dir = await tempDir("galley-t-remote-");
  await convergeTwice(host, remoteFile, { path: path.join(dir, "a"), source: `${base}/moved`, checksum });
  const props = {
    path: path.join(dir, "b"),
    source: `${base}/private`,
    checksum,
    headers: { "x-token": "s3cret" },
  };
  await convergeTwice(host, remoteFile, props);
  assert.equal(await fs.readFile(path.join(dir, "b"), "utf8"), content);
  assert.deepEqual(remoteFile.sensitiveProperties, ["headers"]);
});

test("remote_file: a file changed by hand is downloaded again, with a backup", async () => {
  const target = path.join(await tempDir("galley-t-remote-"), "release.txt");
  const state = await tempDir("galley-t-remote-state-");
  const props = { path: target, source: `${base}/file.txt`, checksum };
  await convergeTwice(host, remoteFile, props, { stateDir: state });
  await fs.writeFile(target, "tampered\n");
  const changes = await convergeTwice(host, remoteFile, props, { stateDir: state });
  assert.deepEqual(changes, [
    {
      property: "content",
      from: `sha256:${sha("tampered\n").slice(0, 12)}`,
      to: `sha256:${checksum.slice(0, 12)}`,
    },
  ]);
  assert.equal(await fs.readFile(target, "utf8"), content);
  const backups = await fs.readdir(path.join(state, "backup", path.dirname(target)));
  assert.equal(
    await fs.readFile(path.join(state, "backup", path.dirname(target), backups[0]!), "utf8"),
    "tampered\n",
  );
});

test("remote_file: drifted mode is repaired without downloading", async () => {
  const target = path.join(await tempDir("galley-t-remote-"), "release.txt");
  await fs.writeFile(target, content, { mode: 0o600 });
  await fs.chmod(target, 0o600);
  const count = requests.length;
  const changes = await convergeTwice(host, remoteFile, {
    path: target,
    source: `${base}/file.txt`,
    checksum,
    mode: 0o644,
  });
  assert.deepEqual(changes, [{ property: "mode", from: "0600", to: "0644" }]);
  assert.equal(requests.length, count);
});

test("remote_file: a checksum mismatch names URL and both sums, and leaves the old file intact", async () => {
  const dir = await tempDir("galley-t-remote-");
  const target = path.join(dir, "release.txt");
  await fs.writeFile(target, "old\n");
  const wrong = sha("something else\n");
  await assert.rejects(
    converge({ path: target, source: `${base}/file.txt`, checksum: wrong }),
    (error: Error & { hint?: string }) => {
      assert.match(
        error.message,
        new RegExp(`checksum mismatch for ${base}/file.txt: expected sha256 ${wrong}, got ${checksum}`),
      );
      assert.match(error.hint ?? "", new RegExp(`set checksum to "${checksum}"`));
      return true;
    },
  );
  assert.equal(await fs.readFile(target, "utf8"), "old\n");
  assert.deepEqual(await fs.readdir(dir), ["release.txt"], "no temp file left behind");
});

test("remote_file: HTTP errors and unreachable servers fail clearly", async () => {
  const target = path.join(await tempDir("galley-t-remote-"), "x");
  await assert.rejects(
    converge({ path: target, source: `${base}/missing`, checksum }),
    /downloading .*\/missing failed: HTTP 404 Not Found/,
  );
  await assert.rejects(converge({ path: target, source: `${base}/private`, checksum }), /HTTP 403/);
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  await assert.rejects(
    converge({ path: target, source: `http://127.0.0.1:${port}/x`, checksum }),
    /ECONNREFUSED/,
  );
  await assert.rejects(fs.stat(target));
});

test("remote_file: validates source and checksum", () => {
  const issues = (props: object) => JSON.stringify(v.safeParse(remoteFile.schema, props).issues ?? []);
  assert.match(issues({ path: "/x", source: "ftp://example.com/a", checksum }), /source/);
  assert.match(issues({ path: "/x", source: "https://example.com/a", checksum: "abc" }), /checksum/);
  assert.match(issues({ path: "/x", source: "https://example.com/a" }), /checksum/);
  assert.equal(
    v.parse(remoteFile.schema, { path: "/x", source: "https://e.com/a", checksum: checksum.toUpperCase() })
      .checksum,
    checksum,
  );
});

test("remote_file: https with a private CA trusted through NODE_EXTRA_CA_CERTS", async (t) => {
  const dir = await tempDir("galley-t-remote-tls-");
  const run = promisify(execFile);
  try {
    await run("openssl", [
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"],
      ...[
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "ca.pem"),
      ],
    ]);
  } catch {
    return t.skip("openssl is not installed");
  }
  const tls = https.createServer(
    { key: await fs.readFile(path.join(dir, "key.pem")), cert: await fs.readFile(path.join(dir, "ca.pem")) },
    serve,
  );
  await new Promise<void>((resolve) => tls.listen(0, "127.0.0.1", resolve));
  t.after(() => tls.close());
  const source = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/file.txt`;
  const target = path.join(dir, "release.txt");

  // this process does not trust the CA: the certificate error is the message
  await assert.rejects(converge({ path: target, source, checksum }), /certificate/i);

  // NODE_EXTRA_CA_CERTS is read at start-up: a fresh process that trusts the CA converges
  const script = `
    import { LocalHost } from ${JSON.stringify(path.resolve("src/hosts/local.ts"))};
    import { remoteFile } from ${JSON.stringify(path.resolve("src/resources/remote_file.ts"))};
    import { convergeTwice } from ${JSON.stringify(path.resolve("src/resources/testing.ts"))};
    const changes = await convergeTwice(new LocalHost(), remoteFile, ${JSON.stringify({ path: target, source, checksum })});
    console.log(JSON.stringify(changes.map((c) => c.property)));
  `;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, "ca.pem") },
  });
  assert.equal(stdout.trim(), '["ensure","content"]');
  assert.equal(await fs.readFile(target, "utf8"), content);
});
