import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import type { Facts } from "../core/host.ts";
import { tempDir } from "../resources/testing.ts";
import { loadAttributeFile } from "./cookbook.ts";
import { type AttributeLevel, AttributeSet, attributeLevels, formatExplanation } from "./precedence.ts";
import { fileLines } from "./yaml-lines.ts";

const noFacts = {} as Facts;

/** Writes a YAML file, reads it back as compile does, and adds it to the set with its lines. */
async function addFile(
  set: AttributeSet,
  dir: string,
  level: AttributeLevel,
  name: string,
  text: string,
  options: { label?: string; sensitive?: boolean } = {},
): Promise<void> {
  const file = path.join(dir, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
  const line = await fileLines(file);
  set.add(
    {
      level,
      label: options.label ?? `${level} ${name}`,
      file,
      ...(line ? { line } : {}),
      ...(options.sensitive ? { sensitive: true } : {}),
    },
    await loadAttributeFile(file, noFacts),
  );
}

test("the levels, lowest first, are the documented ones", () => {
  assert.deepEqual(attributeLevels, [
    "default",
    "stack",
    "layer",
    "instance",
    "deployment",
    "run",
    "override",
    "automatic",
  ]);
});

test("every level beats the ones below it, whatever order the layers are added in", async () => {
  const dir = await tempDir();
  for (const [top, level] of attributeLevels.entries()) {
    const set = new AttributeSet();
    // highest first: the merge order must come from the level, not from add()
    for (const lower of attributeLevels.slice(0, top + 1).reverse()) {
      await addFile(set, dir, lower, `${lower}.yaml`, `winner: ${lower}\nfrom_${lower}: true\n`);
    }
    assert.equal(set.merged().winner, level);
    for (const lower of attributeLevels.slice(0, top + 1)) assert.equal(set.merged()[`from_${lower}`], true);
    const explanation = set.explain("winner");
    assert.deepEqual(
      explanation.contributions.map((c) => [c.level, c.status]),
      attributeLevels.slice(0, top + 1).map((l) => [l, l === level ? "wins" : "overridden"]),
    );
    assert.equal(explanation.winner?.level, level);
    assert.equal(explanation.value, level);
  }
});

test("within a level, layers merge in the order they were added", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(set, dir, "run", "first.yaml", "app:\n  port: 1\n  env: first\n", {
    label: "--attrs first.yaml",
  });
  await addFile(set, dir, "default", "default.yaml", "app:\n  port: 0\n  workers: 2\n");
  await addFile(set, dir, "run", "second.yaml", "app:\n  port: 2\n", { label: "--attrs second.yaml" });
  assert.deepEqual(set.merged(), { app: { port: 2, env: "first", workers: 2 } });
  assert.deepEqual(
    set.sources().map((s) => s.label),
    ["default default.yaml", "--attrs first.yaml", "--attrs second.yaml"],
  );
  const port = set.explain("app.port");
  assert.deepEqual(
    port.contributions.map((c) => [c.label, c.line, c.value, c.status]),
    [
      ["default default.yaml", 2, 0, "overridden"],
      ["--attrs first.yaml", 2, 1, "overridden"],
      ["--attrs second.yaml", 2, 2, "wins"],
    ],
  );
});

test("objects merge deeply; arrays and scalars replace", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(
    set,
    dir,
    "default",
    "web/attributes/default.yaml",
    "app:\n  port: 8080\n  tags: [a, b, c]\n  tls:\n    cert: /etc/ssl/web.pem\n  servers:\n    - { name: web1, port: 81 }\n",
  );
  await addFile(
    set,
    dir,
    "run",
    "prod.yaml",
    "app:\n  port: 8443\n  tags: [d]\n  tls:\n    key: /etc/ssl/web.key\n  servers:\n    - { name: web2 }\n",
  );
  assert.deepEqual(set.merged(), {
    app: {
      port: 8443,
      tags: ["d"],
      tls: { cert: "/etc/ssl/web.pem", key: "/etc/ssl/web.key" },
      // objects inside an array do not merge: the array is replaced whole
      servers: [{ name: "web2" }],
    },
  });
  const tags = set.explain(["app", "tags"]);
  assert.deepEqual(tags.value, ["d"]);
  assert.deepEqual(
    tags.contributions.map((c) => c.status),
    ["overridden", "wins"],
  );
  // the replaced array's item that the new array lacks is hidden, not merged
  const port = set.explain("app.servers.0.port");
  assert.equal(port.value, undefined);
  assert.deepEqual(
    port.contributions.map((c) => [c.level, c.status, c.replaced, c.line]),
    [
      ["default", "hidden", undefined, 7],
      ["run", "wins", ["app", "servers"], 6],
    ],
  );
});

test("an object value is merged from its layers, and each leaf names the layer it came from", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(set, dir, "default", "default.yaml", "app:\n  port: 8080\n  tls:\n    cert: c.pem\n", {
    label: "cookbook web: attributes/default.yaml",
  });
  await addFile(set, dir, "run", "prod.yaml", "app:\n  tls:\n    key: k.pem\n", {
    label: "--attrs prod.yaml",
  });
  const app = set.explain("app");
  assert.deepEqual(app.value, { port: 8080, tls: { cert: "c.pem", key: "k.pem" } });
  assert.equal(app.winner, undefined);
  assert.deepEqual(
    app.contributions.map((c) => [c.level, c.line, c.status]),
    [
      ["default", 1, "merged"],
      ["run", 1, "merged"],
    ],
  );
  assert.deepEqual(
    app.leaves?.map((l) => [l.path.join("."), l.value, l.label, l.line]),
    [
      ["app.port", 8080, "cookbook web: attributes/default.yaml", 2],
      ["app.tls.cert", "c.pem", "cookbook web: attributes/default.yaml", 4],
      ["app.tls.key", "k.pem", "--attrs prod.yaml", 3],
    ],
  );
  const text = formatExplanation(app);
  assert.match(text, /^app = \{"port":8080,.*\(merged from 2 layers\)\n/);
  assert.match(text, /\n {4}app\.tls\.key +"k\.pem" +run --attrs prod\.yaml:3\n/);
});

test("an ancestor replaced by a scalar hides the values below it until a higher level sets them again", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(set, dir, "default", "default.yaml", "app:\n  port: 8080\n", {
    label: "cookbook web: attributes/default.yaml",
  });
  await addFile(set, dir, "stack", "stack.yaml", "app: disabled\n", { label: "stack production" });
  assert.deepEqual(set.merged(), { app: "disabled" });
  const hidden = set.explain("app.port");
  assert.equal(hidden.value, undefined);
  assert.deepEqual(
    hidden.contributions.map((c) => [c.level, c.status, c.replaced, c.value, c.line]),
    [
      ["default", "hidden", undefined, 8080, 2],
      ["stack", "wins", ["app"], "disabled", 1],
    ],
  );
  assert.equal(
    formatExplanation(hidden),
    [
      'app.port is not set  (stack stack production:1 set app to "disabled")',
      "  default  cookbook web: attributes/default.yaml:2  8080                          hidden",
      '  stack    stack production:1                       replaces app with "disabled"  ← wins',
      "",
    ].join("\n"),
  );

  // a recipe's override builds the object again: only its own keys are there
  set.add({ level: "override", label: "recipe web::default" }, { app: { workers: 8 } });
  assert.deepEqual(set.merged(), { app: { workers: 8 } });
  assert.equal(set.explain("app.port").contributions.at(-1)?.status, "wins");
  const workers = set.explain("app.workers");
  assert.deepEqual(
    workers.contributions.map((c) => [c.level, c.label, c.status, c.line]),
    [
      // it set app to a scalar, so app.workers was not there either: noted, then rebuilt by the recipe
      ["stack", "stack production", "overridden", 1],
      ["override", "recipe web::default", "wins", undefined],
    ],
  );
  const app = set.explain("app");
  assert.deepEqual(
    app.contributions.map((c) => [c.level, c.status]),
    [
      ["default", "overridden"],
      ["stack", "overridden"],
      ["override", "wins"],
    ],
  );
});

test("stack, layer and instance layers sit between cookbook defaults and the run's files", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(set, dir, "run", "prod.yaml", "db:\n  pool: 20\n", { label: "--attrs prod.yaml" });
  await addFile(set, dir, "instance", "web1.yaml", "db:\n  host: 10.0.0.5\n  pool: 5\n", {
    label: "instance web1",
  });
  await addFile(set, dir, "layer", "app.yaml", "db:\n  host: db.internal\n  pool: 10\n", {
    label: "layer app",
  });
  await addFile(set, dir, "stack", "stack.yaml", "db:\n  host: db.example\n  name: shop\n", {
    label: "stack production",
  });
  await addFile(set, dir, "default", "default.yaml", "db:\n  host: localhost\n  name: app\n  pool: 1\n");
  assert.deepEqual(set.merged(), { db: { host: "10.0.0.5", name: "shop", pool: 20 } });
  assert.deepEqual(
    set.explain("db.host").contributions.map((c) => [c.label, c.status]),
    [
      ["default default.yaml", "overridden"],
      ["stack production", "overridden"],
      ["layer app", "overridden"],
      ["instance web1", "wins"],
    ],
  );
});

test("automatic attributes (facts) win over everything, at the top level", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  set.add({ level: "automatic", label: "facts" }, { hostname: "web1", os: { family: "debian" } });
  await addFile(set, dir, "run", "prod.yaml", "hostname: spoofed\nos:\n  family: redhat\n  flavour: x\n");
  assert.deepEqual(set.merged(), { hostname: "web1", os: { family: "debian", flavour: "x" } });
  const family = set.explain("os.family");
  assert.equal(family.value, "debian");
  assert.equal(formatExplanation(family).split("\n")[0], 'os.family = "debian"  (won: automatic facts)');
});

test("explain names the file line of nested keys and list items in real YAML files", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(
    set,
    dir,
    "default",
    "web/attributes/default.yaml",
    "# defaults of web\napp:\n  port: 8080\n  upstreams:\n    - 10.0.0.1\n    - 10.0.0.2\n",
    { label: "cookbook web: attributes/default.yaml" },
  );
  await addFile(set, dir, "run", "prod.yaml", "\napp:\n  port: 8443\n", { label: "--attrs prod.yaml" });
  const port = set.explain("app.port");
  assert.equal(port.contributions[0]?.file, path.join(dir, "web/attributes/default.yaml"));
  assert.equal(
    formatExplanation(port),
    [
      "app.port = 8443  (won: run --attrs prod.yaml:3)",
      "  default  cookbook web: attributes/default.yaml:3  8080",
      "  run      --attrs prod.yaml:3                      8443  ← wins",
      "",
    ].join("\n"),
  );
  const item = set.explain(["app", "upstreams", "1"]);
  assert.equal(item.value, "10.0.0.2");
  assert.deepEqual(
    item.contributions.map((c) => [c.label, c.line, c.status]),
    [["cookbook web: attributes/default.yaml", 6, "wins"]],
  );
});

test("an unknown path explains as not set, with no contributions", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(set, dir, "default", "default.yaml", "app:\n  port: 8080\n");
  const unknown = set.explain("app.prot");
  assert.deepEqual(unknown, { path: ["app", "prot"], value: undefined, sensitive: false, contributions: [] });
  assert.equal(formatExplanation(unknown), "app.prot is not set: no level sets it\n");
  assert.deepEqual(new AttributeSet().explain("x").contributions, []);
});

test("sensitive values are redacted in explain, in its formatted text and in redacted(), and listed for scrubbing", async () => {
  const dir = await tempDir();
  const set = new AttributeSet();
  await addFile(set, dir, "default", "default.yaml", "db:\n  user: app\n  password: changeme\n");
  await addFile(
    set,
    dir,
    "run",
    "secrets.yaml",
    "db:\n  password: hunter2-secret\n  tokens: [tok-one, tok-two]\n",
    {
      label: "--attrs secrets.yaml",
      sensitive: true,
    },
  );
  // merged() is what recipes read: the real values
  assert.equal(set.merged().db.password, "hunter2-secret");
  assert.deepEqual(set.redacted(), {
    db: { user: "app", password: "(sensitive)", tokens: "(sensitive)" },
  });
  const password = set.explain("db.password");
  assert.equal(password.value, "(sensitive)");
  assert.equal(password.sensitive, true);
  assert.deepEqual(
    password.contributions.map((c) => [c.value, c.sensitive, c.line]),
    [
      ["changeme", false, 3],
      ["(sensitive)", true, 2],
    ],
  );
  const db = set.explain("db");
  assert.deepEqual(db.value, { user: "app", password: "(sensitive)", tokens: "(sensitive)" });
  assert.deepEqual(
    db.leaves?.map((l) => [l.path.join("."), l.value, l.sensitive]),
    [
      ["db.user", "app", false],
      ["db.password", "(sensitive)", true],
      ["db.tokens", "(sensitive)", true],
    ],
  );
  for (const explanation of [password, db, set.explain("db.tokens.1"), set.explain("")]) {
    const text = formatExplanation(explanation) + JSON.stringify(explanation);
    for (const secret of ["hunter2-secret", "tok-one", "tok-two"]) assert.ok(!text.includes(secret), text);
  }
  assert.match(
    formatExplanation(password),
    /^db\.password = \(sensitive\) {2}\(won: run --attrs secrets\.yaml:2\)\n/,
  );
  assert.deepEqual(set.sensitiveValues(), ["hunter2-secret", "tok-one", "tok-two"]);
});

test("sensitiveValues: strings and numbers of 4 characters or more, each line of a multi-line string", () => {
  const set = new AttributeSet();
  set.add({ level: "default", label: "public" }, { user: "someone-public" });
  set.add(
    { level: "run", label: "secrets", sensitive: true },
    { pin: 123456, port: 80, flag: true, short: "abc", key: "-----BEGIN-----\n  AAAAkey\n-----END-----" },
  );
  assert.deepEqual(set.sensitiveValues(), [
    "-----BEGIN-----\n  AAAAkey\n-----END-----",
    "-----BEGIN-----",
    "-----END-----",
    "AAAAkey",
    "123456",
  ]);
});

test("merged() is cached until the next add()", async () => {
  const set = new AttributeSet();
  set.add({ level: "default", label: "a" }, { x: 1 });
  const first = set.merged();
  assert.equal(set.merged(), first);
  set.add({ level: "run", label: "b" }, { x: 2 });
  assert.notEqual(set.merged(), first);
  assert.equal(set.merged().x, 2);
});
