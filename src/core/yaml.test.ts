import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import * as v from "valibot";
import { parseYamlFile, readAttributeFile } from "../cookbooks/cookbook.ts";
import { readLock } from "../cookbooks/lock.ts";
import { loadSources } from "../cookbooks/sources.ts";
import { loadInventory } from "../inventory/load.ts";
import { tempDir } from "../resources/testing.ts";
import { parseSecretAttributes } from "../secrets/vault.ts";
import { loadStack } from "../stacks/stack.ts";
import { type GalleyError, isGalleyError } from "./errors.ts";
import { yamlLimits } from "./yaml.ts";

const bomb = [
  "a: &a [x, x, x, x, x, x, x, x, x]",
  "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]",
  "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]",
  "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]",
  "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]",
  "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]",
  "",
].join("\n");

// each bad text, the line it must name, and what the message must say
const bad: [string, string, number, RegExp][] = [
  ["alias to nothing", "x: 1\nhosts: *nowhere\n", 2, /alias \*nowhere names no anchor/],
  ["alias bomb", bomb, 2, /aliases expand into too much data/],
  [
    "alias inside its own anchor",
    "x: 1\nself: &s\n  again: *s\n",
    3,
    /alias \*s is inside the value it names/,
  ],
  ["deep nesting", `x: ${"[".repeat(200)}${"]".repeat(200)}\n`, 1, /nested/],
  [
    "deep block nesting",
    `${Array.from({ length: 80 }, (_, i) => `${" ".repeat(i)}k:`).join("\n")} 1\n`,
    64,
    /nested more than 64/,
  ],
  ["duplicate key", "a: 1\nb: 2\na: 3\n", 3, /unique/],
  ["!!binary", "x: 1\ny: !!binary aGVsbG8=\n", 2, /!!binary is not supported/],
  ["!!set", "y: !!set {a}\n", 1, /!!set is not supported/],
  ["an unknown tag", "y: !python/object foo\n", 1, /!python\/object is not supported/],
  ["a NUL byte", "x: 1\ny: a\u0000b\n", 2, /control character \(0x00\)/],
  ["__proto__", "x:\n  __proto__: { polluted: true }\n", 2, /"__proto__" cannot be used as a key/],
  ["constructor", "constructor: 1\n", 1, /"constructor" cannot be used as a key/],
];

async function write(dir: string, name: string, text: string | Buffer): Promise<string> {
  const file = path.join(dir, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, text);
  return file;
}

async function refused(
  read: () => Promise<unknown>,
  code: string,
  file: string,
  line: number | undefined,
  said: RegExp,
) {
  let caught: unknown;
  try {
    await read();
  } catch (error) {
    caught = error;
  }
  assert.ok(
    isGalleyError(caught),
    `expected a GalleyError, got ${String((caught as Error)?.stack ?? caught)}`,
  );
  const error = caught as GalleyError;
  assert.equal(error.code, code, error.message);
  assert.ok(error.message.startsWith(`${file}${line === undefined ? "" : `:${line}:`}`), error.message);
  assert.match(error.message, said);
  assert.ok(error.hint, "a hint");
}

test("every YAML reader refuses aliases to nothing, bombs, deep nesting, foreign tags, NUL and reserved keys with its code and line", async () => {
  const dir = await tempDir("galley-yaml-");
  for (const [what, text, line, said] of bad) {
    const sub = path.join(dir, what.replace(/\W+/g, "-"));
    const readers: [string, string, () => Promise<unknown>, string][] = [];
    const inv = await write(sub, "inv.yaml", text);
    // Ansible reads a duplicate key as the last one: so does Galley, for the same inventory to mean the same
    if (what !== "duplicate key")
      readers.push(["Ansible inventory", "INVENTORY_INVALID", () => loadInventory(inv), inv]);
    const stack = await write(sub, "stacks/s.yaml", text);
    readers.push(["stack file", "STACK_INVALID", () => loadStack(stack), stack]);
    const attrs = await write(sub, "attrs.yaml", text);
    readers.push([
      "attribute file",
      "ATTRIBUTES_INVALID",
      () => readAttributeFile(attrs, {} as never),
      attrs,
    ]);
    const sources = await write(sub, "cookbooks.yaml", text);
    readers.push(["cookbooks.yaml", "SOURCE_INVALID", () => loadSources(sub), sources]);
    const lock = await write(sub, "cookbooks.lock", text);
    readers.push(["cookbooks.lock", "LOCK_INVALID", () => readLock(lock), lock]);
    const meta = path.join(sub, "cookbook.yaml");
    readers.push([
      "cookbook.yaml",
      "COOKBOOK_INVALID",
      async () => parseYamlFile(meta, text, v.unknown()),
      meta,
    ]);
    for (const [kind, code, read, file] of readers) {
      await test(`${what} in a ${kind}`, () => refused(read, code, file, line, said));
    }
    // a secret file's errors name the line only, never its text
    await test(`${what} in a secrets file's content`, () =>
      refused(
        async () => parseSecretAttributes("s.yaml", text),
        "ATTRIBUTES_INVALID",
        "s.yaml",
        undefined,
        new RegExp(`not valid YAML at line ${line}$`),
      ));
  }
});

test("a Galley inventory refuses an alias to nothing with INVENTORY_INVALID", async () => {
  const dir = await tempDir("galley-yaml-");
  const file = await write(dir, "inv.yaml", "hosts:\n  web1: *nowhere\n");
  await refused(() => loadInventory(file), "INVENTORY_INVALID", file, 2, /alias \*nowhere/);
});

test("a file that is not UTF-8 or is too large is refused before it is parsed", async () => {
  const dir = await tempDir("galley-yaml-");
  const latin1 = Buffer.from("name: web\ndescription: caf\xe9\n", "latin1");
  const stack = await write(dir, "s.yaml", latin1);
  await refused(() => loadStack(stack), "STACK_INVALID", stack, 2, /not UTF-8/);
  const inv = await write(dir, "inv.yaml", latin1);
  await refused(() => loadInventory(inv), "INVENTORY_INVALID", inv, 2, /not UTF-8/);
  const attrs = await write(dir, "a.yaml", latin1);
  await refused(() => readAttributeFile(attrs, {} as never), "ATTRIBUTES_INVALID", attrs, 2, /not UTF-8/);
  const huge = await write(dir, "huge.yaml", `x: "${"a".repeat(yamlLimits.maxBytes)}"\n`);
  await refused(() => loadStack(huge), "STACK_INVALID", huge, undefined, /larger than/);
  await refused(
    () => readAttributeFile(huge, {} as never),
    "ATTRIBUTES_INVALID",
    huge,
    undefined,
    /larger than/,
  );
});

test("valid files with anchors, aliases and !sensitive still read", async () => {
  const dir = await tempDir("galley-yaml-");
  const attrs = await write(dir, "a.yaml", "base: &b { port: 80 }\nweb: *b\npw: !sensitive s3cret-value\n");
  const { values } = await readAttributeFile(attrs, {} as never);
  assert.deepEqual(values, { base: { port: 80 }, web: { port: 80 }, pw: "s3cret-value" });
});

test("a NUL character written as an escape is refused in names, paths and addresses, kept in attribute data", async () => {
  const dir = await tempDir("galley-yaml-");
  const inv = await write(dir, "inv.yaml", 'hosts:\n  web1:\n    address: "10.0.0.1\\0"\n');
  await refused(() => loadInventory(inv), "INVENTORY_INVALID", inv, 3, /a NUL character/);
  const stack = await write(dir, "s.yaml", 'name: "prod\\0"\n');
  await refused(() => loadStack(stack), "STACK_INVALID", stack, 1, /a NUL character/);
  const attrs = await write(dir, "a.yaml", 'blob: "a\\0b"\n');
  assert.deepEqual((await readAttributeFile(attrs, {} as never)).values, { blob: "a\u0000b" });
});
