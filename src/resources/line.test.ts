import * as v from "valibot";
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { LocalHost } from "../hosts/local.ts";
import { line } from "./line.ts";
import { convergeTwice, prepare, tempDir } from "./testing.ts";

const host = new LocalHost();

async function fileWith(content: string, mode = 0o644): Promise<string> {
  const file = path.join(await tempDir("galley-t-line-"), "app.conf");
  await fs.writeFile(file, content, { mode });
  await fs.chmod(file, mode);
  return file;
}

test("line: add appends a missing line and adds the missing final newline", async () => {
  const file = await fileWith("a=1\nb=2");
  const changes = await convergeTwice(host, line, { path: file, line: "c=3" });
  assert.equal(await fs.readFile(file, "utf8"), "a=1\nb=2\nc=3\n");
  assert.equal(changes.length, 1);
  assert.match(changes[0]?.diff ?? "", /^\+c=3$/m);
});

test("line: add changes nothing when the line is present (no final newline added)", async () => {
  const file = await fileWith("a=1\nc=3");
  assert.deepEqual(await convergeTwice(host, line, { path: file, line: "c=3" }), []);
  assert.equal(await fs.readFile(file, "utf8"), "a=1\nc=3");
});

test("line: match replaces the last matching line, in place, keeping mode", async () => {
  const file = await fileWith("port=80\nhost=x\nport=81\n# end\n", 0o600);
  const changes = await convergeTwice(host, line, { path: file, line: "port=8080", match: "^port=" });
  assert.equal(await fs.readFile(file, "utf8"), "port=80\nhost=x\nport=8080\n# end\n");
  assert.match(changes[0]?.diff ?? "", /^-port=81$/m);
  assert.match(changes[0]?.diff ?? "", /^\+port=8080$/m);
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
});

test("line: replaceAll replaces every matching line", async () => {
  const file = await fileWith("port=80\nhost=x\nport=81\n");
  await convergeTwice(host, line, { path: file, line: "port=8080", match: "^port=", replaceAll: true });
  assert.equal(await fs.readFile(file, "utf8"), "port=8080\nhost=x\nport=8080\n");
});

test("line: drift after the managed line is replaced again", async () => {
  const file = await fileWith("port=8080\n");
  await fs.appendFile(file, "port=9\n");
  await convergeTwice(host, line, { path: file, line: "port=8080", match: "^port=" });
  assert.equal(await fs.readFile(file, "utf8"), "port=8080\nport=8080\n");
});

test("line: a match for the old form only (commented template) stays idempotent", async () => {
  const file = await fileWith("# port=80\n# port=81\n");
  await convergeTwice(host, line, { path: file, line: "port=8080", match: "^#\\s*port=" });
  assert.equal(await fs.readFile(file, "utf8"), "# port=80\nport=8080\n");
});

test("line: match without a matching line inserts after the last line matching `after`", async () => {
  const file = await fileWith("[main]\nx=1\n[other]\ny=2\n");
  await convergeTwice(host, line, { path: file, line: "z=3", match: "^z=", after: "^x=" });
  assert.equal(await fs.readFile(file, "utf8"), "[main]\nx=1\nz=3\n[other]\ny=2\n");
});

test("line: `after` that matches nothing appends at the end", async () => {
  const file = await fileWith("x=1\n");
  await convergeTwice(host, line, { path: file, line: "z=3", after: "^nothing" });
  assert.equal(await fs.readFile(file, "utf8"), "x=1\nz=3\n");
});

test("line: keeps CRLF line breaks", async () => {
  const file = await fileWith("a=1\r\nb=2\r\n");
  await convergeTwice(host, line, { path: file, line: "b=3", match: "^b=" });
  assert.equal(await fs.readFile(file, "utf8"), "a=1\r\nb=3\r\n");
});

test("line: remove deletes every line equal to `line`", async () => {
  const file = await fileWith("a\nb\na\nc");
  const changes = await convergeTwice(host, line, { path: file, line: "a" }, { action: "remove" });
  assert.match(changes[0]?.diff ?? "", /^-a$/m);
  assert.equal(await fs.readFile(file, "utf8"), "b\nc\n");
});

test("line: remove with match deletes every matching line", async () => {
  const file = await fileWith("keep\n#x\n# y\nkeep too\n");
  await convergeTwice(host, line, { path: file, match: "^#" }, { action: "remove" });
  assert.equal(await fs.readFile(file, "utf8"), "keep\nkeep too\n");
});

test("line: remove on a missing file changes nothing", async () => {
  const file = path.join(await tempDir("galley-t-line-"), "missing");
  assert.deepEqual(await convergeTwice(host, line, { path: file, line: "a" }, { action: "remove" }), []);
});

test("line: add on a missing file without create is a clear error", async () => {
  const file = path.join(await tempDir("galley-t-line-"), "missing.conf");
  const props = await prepare(line, { path: file, line: "a=1" });
  const current = await line.read(host, props);
  assert.deepEqual(line.diff(current, props, "add"), [{ property: "ensure", from: "absent", to: "file" }]);
  await assert.rejects(
    line.apply(host, props, "add", current, { stateDir: "/nonexistent" }),
    (error: Error) => {
      assert.match(error.message, /missing\.conf does not exist/);
      assert.match((error as { hint?: string }).hint ?? "", /create: true/);
      return true;
    },
  );
  await assert.rejects(fs.stat(file));
});

test("line: create makes the file with the line and the given mode", async () => {
  const file = path.join(await tempDir("galley-t-line-"), "new.conf");
  const changes = await convergeTwice(host, line, { path: file, line: "a=1", create: true, mode: "0640" });
  assert.deepEqual(
    changes.map((change) => change.property),
    ["ensure", "content", "mode"],
  );
  assert.equal(await fs.readFile(file, "utf8"), "a=1\n");
  assert.equal((await fs.stat(file)).mode & 0o777, 0o640);
});

test("line: follows a symlink and edits its target, keeping the link", async () => {
  const file = await fileWith("a\n");
  const link = path.join(path.dirname(file), "link");
  await fs.symlink("app.conf", link);
  await convergeTwice(host, line, { path: link, line: "b" });
  assert.equal(await fs.readFile(file, "utf8"), "a\nb\n");
  assert.equal((await fs.lstat(link)).isSymbolicLink(), true);
});

test("line: a directory is refused", async () => {
  const dir = await tempDir("galley-t-line-");
  const props = await prepare(line, { path: dir, line: "a" });
  const current = await line.read(host, props);
  assert.deepEqual(line.diff(current, props, "add"), [{ property: "type", from: "directory", to: "file" }]);
  await assert.rejects(
    line.apply(host, props, "add", current, { stateDir: "/nonexistent" }),
    /is a directory/,
  );
});

test("line: add without `line` is refused", async () => {
  const props = await prepare(line, { path: "/tmp/x", match: "^a" });
  assert.throws(() => line.diff(undefined, { ...props, create: true }, "add"), /action add needs `line`/);
});

test("line: schema rejects a bad regex, a multi-line line and neither line nor match", () => {
  const bad = (input: Record<string, unknown>, pattern: RegExp) => {
    const result = v.safeParse(line.schema, input);
    assert.equal(result.success, false);
    assert.match(JSON.stringify(result.issues), pattern);
  };
  bad({ path: "/x", line: "a", match: "(" }, /not a valid regular expression/);
  bad({ path: "/x", line: "a\nb" }, /single line/);
  bad({ path: "/x" }, /give `line`/);
  bad({ path: "x", line: "a" }, /absolute path/);
});

test("line: two lines of one file read before either applies both land (apply reads again)", async () => {
  const file = await fileWith("x=1\n");
  const first = await prepare(line, { path: file, line: "a=1" });
  const second = await prepare(line, { path: file, line: "b=2" });
  const [one, two] = [await line.read(host, first), await line.read(host, second)];
  await line.apply(host, first, "add", one, { stateDir: "/x" });
  await line.apply(host, second, "add", two, { stateDir: "/x" });
  assert.equal(await fs.readFile(file, "utf8"), "x=1\na=1\nb=2\n");
});

test("line: key and autoRequires", async () => {
  const props = await prepare(line, { path: "/etc/app.conf", line: "a=1", match: "^a=", owner: "app" });
  assert.equal(line.key(props), "/etc/app.conf:/^a=/");
  assert.deepEqual(line.autoRequires?.(props), [{ path: "/etc/app.conf" }, { user: "app" }]);
});
