import assert from "node:assert/strict";
import { connect } from "node:tls";
import { test } from "node:test";
import { call, testServer } from "./test-support.ts";

// Hostile and malformed requests, sent as raw bytes over TLS (node's HTTP client would refuse to
// send most of them): the server answers each with a 4xx, never a 5xx or a stack trace, stores
// nothing but audit refusals, and still answers afterwards.

interface RawReply {
  status: number | undefined;
  text: string;
}

function raw(server: { port: number; caPem: string }, request: string | Buffer): Promise<RawReply> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({
      host: "127.0.0.1",
      port: server.port,
      ca: server.caPem,
      servername: "localhost",
    });
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), text });
      socket.destroy();
    };
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", finish);
    socket.on("close", finish);
    socket.on("error", finish); // a reset after the answer: what was read is kept
    socket.on("secureConnect", () => {
      socket.write(request, () => {});
    });
  });
}

/** The body of a raw response (chunked or not). */
function bodyOf(text: string): string {
  const at = text.indexOf("\r\n\r\n");
  if (at < 0) return "";
  const head = text.slice(0, at);
  let body = text.slice(at + 4);
  if (!/transfer-encoding: chunked/i.test(head)) return body;
  let out = "";
  for (;;) {
    const end = body.indexOf("\r\n");
    const size = Number.parseInt(body.slice(0, end), 16);
    if (end < 0 || !(size > 0)) return out;
    out += body.slice(end + 2, end + 2 + size);
    body = body.slice(end + 4 + size);
  }
}

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

function httpRequest(method: string, target: string, headers: Record<string, string>, body = ""): string {
  const lines = [`${method} ${target} HTTP/1.1`, "Host: localhost", "Connection: close"];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body !== "" && headers["Transfer-Encoding"] === undefined && headers["Content-Length"] === undefined)
    lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${body}`;
}

function hostileBodies(next: () => number): string[] {
  const deep = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
  const deepObject = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
  const bodies = [
    "",
    "{",
    '{"name":',
    "null",
    "[]",
    '"text"',
    "42",
    "true",
    "{}",
    '{"name":1,"grants":"x"}',
    '{"name":"x","grants":[]}',
    '{"name":"x","grants":[{"stack":"a","role":"root"}]}',
    '{"name":"x","grants":[{"stack":"../../etc","role":"admin"}]}',
    '{"name":"x\\u0000y","grants":[{"stack":"a","role":"admin"}]}',
    '{"name":"x","grants":[{"stack":"a","role":"admin","extra":1}]}',
    '{"__proto__":{"admin":true},"name":"x","grants":[{"stack":"a","role":"admin"}],"extra":1}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '{"name":"x","grants":[{"stack":"a","role":"admin"}],"expiresAt":"yesterday"}',
    `{"name":"${"n".repeat(100_000)}","grants":[{"stack":"a","role":"admin"}]}`,
    `{"name":"x","grants":[${Array(5000).fill('{"stack":"a","role":"viewer"}').join(",")}]}`,
    deep(100_000),
    deepObject(50_000),
    `{"name":${deep(10_000)}}`,
    "\u0000\u0001\u0002",
    "\uFEFF{}",
    '{"name":"x","name":"y"}',
    "1e99999",
    '{"a":"\\ud800"}',
  ];
  for (let i = 0; i < 40; i++) {
    const length = Math.floor(next() * 200);
    let text = "";
    for (let j = 0; j < length; j++) text += String.fromCharCode(Math.floor(next() * 128));
    bodies.push(text);
  }
  return bodies;
}

test("hundreds of malformed and hostile requests: 4xx each, no stack trace, nothing stored but refusals", async (t) => {
  const server = await testServer(t);
  const next = random(13);
  const admin = { Authorization: `Bearer ${server.adminToken}` };
  const json = { ...admin, "Content-Type": "application/json" };
  const requests: { name: string; bytes: string | Buffer }[] = [];
  const add = (name: string, bytes: string | Buffer) => requests.push({ name, bytes });

  for (const [i, body] of hostileBodies(next).entries()) {
    add(`body ${i} as admin`, httpRequest("POST", "/v1/tokens", json, body));
    add(
      `body ${i} anonymous`,
      httpRequest("POST", "/v1/tokens", { "Content-Type": "application/json" }, body),
    );
  }
  const validBody = '{"name":"x","grants":[{"stack":"a","role":"admin"}]}';
  for (const type of [
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/jsonx",
    "application/x-www-form-urlencoded",
    "",
    "application/json\u0000",
  ])
    add(
      `content type ${JSON.stringify(type)}`,
      httpRequest("POST", "/v1/tokens", { ...admin, "Content-Type": type }, "name=x"),
    );
  add("no content type", httpRequest("POST", "/v1/tokens", admin, validBody.replace("admin", "boss")));
  const huge = "x".repeat(2 * 1024 * 1024);
  add("huge body", httpRequest("POST", "/v1/tokens", json, huge));
  add(
    "huge body, anonymous",
    httpRequest("POST", "/v1/tokens", { "Content-Type": "application/json" }, huge),
  );
  const chunk = "x".repeat(64 * 1024);
  const chunked = `${`${(64 * 1024).toString(16)}\r\n${chunk}\r\n`.repeat(20)}0\r\n\r\n`;
  add(
    "huge chunked body",
    httpRequest("POST", "/v1/tokens", { ...json, "Transfer-Encoding": "chunked" }, chunked),
  );
  add("huge body on GET", httpRequest("GET", "/v1/health", { "Content-Type": "application/json" }, huge));

  const paths = [
    "/v1/tokens/..%2f..%2fetc%2fpasswd",
    "/v1/tokens/..%2F..%2F",
    "/v1/../v1/tokens",
    "/v1/%2e%2e/%2e%2e/etc/passwd",
    "/v1/tokens/%00",
    "/v1/tokens/a%00b",
    "/v1/tokens/%zz",
    "/v1/tokens/%",
    "/v1/tokens/%E0%A4%A",
    `/v1/tokens/${"a".repeat(4000)}`,
    `/${"v1/".repeat(1000)}`,
    "/v1/audit?limit=-1",
    "/v1/audit?limit=99999999999999999999",
    "/v1/audit?limit=1e3",
    "/v1/audit?stack=../../x",
    "/v1/audit?stack=a&stack=b&outcome=nope",
    "/v1/audit?outcome[]=ok",
    "/v1/audit?%00=%00",
    "//v1//tokens",
    "/V1/TOKENS",
    "/v1/tokens/",
    "*",
    "http://evil.example/v1/tokens",
    "/v1/openapi.json/../tokens",
    "/v1/ca.pem%00.txt",
  ];
  for (const p of paths) {
    for (const method of ["GET", "DELETE", "POST"])
      add(
        `${method} ${p.slice(0, 40)}`,
        httpRequest(method, p, method === "POST" ? json : admin, method === "POST" ? "{}" : ""),
      );
    add(`GET ${p.slice(0, 40)} anonymous`, httpRequest("GET", p, {}));
  }
  for (const method of ["PUT", "PATCH", "OPTIONS", "TRACE", "HEAD", "CONNECT", "FOO", "get", "PROPFIND"])
    for (const p of ["/v1/health", "/v1/tokens", "/v1/nothing", "/"])
      add(`${method} ${p}`, httpRequest(method, p, admin));

  const headerCases: Record<string, string>[] = [
    { Authorization: `Bearer ${"a".repeat(60_000)}` },
    { Authorization: "Bearer" },
    { Authorization: "Bearer " },
    { Authorization: "Bearer a b c" },
    { Authorization: `Bearer ${server.adminToken}x` },
    { Authorization: `bearer ${server.adminToken.slice(0, -1)}` },
    { Authorization: "Agent not-a-session" },
    { Authorization: "Basic YWRtaW46YWRtaW4=" },
    { Authorization: "Bearer \u0000\u0001" },
    { Authorization: "Bearer é€😀" },
    { "Content-Length": "-1" },
    { "Content-Length": "abc" },
    { "Content-Length": "5", "Transfer-Encoding": "chunked" },
    { "Transfer-Encoding": "gzip, chunked" },
    { Host: "" },
    { "X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "http", "X-HTTP-Method-Override": "DELETE" },
    Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`X-H${i}`, "v"])),
    { "X-Big": "b".repeat(100_000) },
    { "X-Inject": "a\r\nAuthorization: Bearer x" },
  ];
  for (const [i, headers] of headerCases.entries()) {
    add(`headers ${i} GET tokens`, httpRequest("GET", "/v1/tokens", headers));
    add(
      `headers ${i} POST tokens`,
      httpRequest("POST", "/v1/tokens", { "Content-Type": "application/json", ...headers }, validBody),
    );
  }
  add(
    "duplicate Authorization",
    httpRequest("GET", "/v1/tokens", {}).replace(
      "Connection: close",
      `Connection: close\r\nAuthorization: Bearer x\r\nAuthorization: Bearer ${server.adminToken}`,
    ),
  );
  add(
    "NUL in the request line",
    Buffer.from("GET /v1/to\u0000kens HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", "latin1"),
  );
  add(
    "NUL in a header",
    Buffer.from(
      `GET /v1/tokens HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${server.adminToken}\u0000\r\nConnection: close\r\n\r\n`,
      "latin1",
    ),
  );
  add("not HTTP", "\u0016\u0003\u0001hello\r\n\r\n");
  add("HTTP/0.9", "GET /v1/health\r\n\r\n");
  add("HTTP/2 preface over HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  add("bare LF", "GET /v1/tokens HTTP/1.1\nHost: localhost\nConnection: close\n\n");
  for (let i = 0; i < 30; i++) {
    let junk = "";
    const length = 1 + Math.floor(next() * 300);
    for (let j = 0; j < length; j++) junk += String.fromCharCode(Math.floor(next() * 256));
    add(`junk ${i}`, Buffer.from(`${junk}\r\n\r\n`, "latin1"));
  }
  assert.ok(requests.length >= 300, `${requests.length} requests`);

  const replies: { name: string; reply: RawReply }[] = [];
  for (let i = 0; i < requests.length; i += 6) {
    const batch = requests.slice(i, i + 6);
    replies.push(
      ...(await Promise.all(batch.map(async (r) => ({ name: r.name, reply: await raw(server, r.bytes) })))),
    );
  }
  for (const { name, reply } of replies) {
    // a connection the server closes without an answer (junk it cannot parse) is fine; a 5xx is not
    if (reply.status !== undefined)
      assert.ok(reply.status < 500, `${name}: HTTP ${reply.status}\n${reply.text.slice(0, 500)}`);
    assert.doesNotMatch(
      reply.text,
      /\n\s+at |node_modules|\/src\/|Error:/,
      `${name}: a stack trace or internals`,
    );
    const body = bodyOf(reply.text);
    if (
      reply.status !== undefined &&
      reply.status >= 400 &&
      body !== "" &&
      /content-type: application\/json/i.test(reply.text)
    ) {
      const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
      assert.equal(typeof parsed.error?.code, "string", `${name}: ${body.slice(0, 200)}`);
    }
  }
  if (process.env.FUZZ_DEBUG)
    for (const r of replies)
      console.log(r.reply.status, r.name.slice(0, 60), JSON.stringify(bodyOf(r.reply.text).slice(0, 160)));
  const answered = replies.filter((r) => r.reply.status !== undefined).length;
  assert.ok(answered >= requests.length * 0.8, `only ${answered} of ${requests.length} answered`);
  const huges = replies.filter((r) => r.name.startsWith("huge body") || r.name === "huge chunked body");
  for (const { name, reply } of huges.filter((r) => !r.name.includes("GET")))
    assert.equal(reply.status, 413, name);

  // nothing stored but refusals: still one token; the audit holds refusals only
  const tokens = await server.ctx.store.listTokens();
  assert.deepEqual(
    tokens.map((t) => t.name),
    ["admin"],
  );
  const audit = await server.ctx.store.listAudit({ limit: 10_000 });
  assert.ok(audit.length > 0);
  assert.deepEqual([...new Set(audit.map((e) => e.outcome))], ["refused"]);
  assert.ok(!JSON.stringify(audit).includes(server.adminToken), "the admin token in the audit log");
  // and it still answers
  assert.equal((await call(server, "GET", "/v1/health")).status, 200);
  assert.equal((await call(server, "GET", "/v1/tokens", { token: server.adminToken })).status, 200);
});
