import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import { tempDir } from "../resources/testing.ts";
import { fileLines, yamlLines } from "./yaml-lines.ts";

test("block style: the line of each key, nested keys and list items", () => {
  const lines = yamlLines(
    [
      "# web defaults",
      "app:",
      "  port: 8080",
      "  tls:",
      "    cert: /etc/ssl/web.pem",
      "  hosts:",
      "    - a.example",
      "    - b.example",
      "",
    ].join("\n"),
  );
  assert.equal(lines(["app"]), 2);
  assert.equal(lines(["app", "port"]), 3);
  assert.equal(lines(["app", "tls", "cert"]), 5);
  assert.equal(lines(["app", "hosts"]), 6);
  assert.equal(lines(["app", "hosts", "0"]), 7);
  assert.equal(lines(["app", "hosts", "1"]), 8);
});

test("flow style, and flow inside block: the line where the key or item starts", () => {
  const lines = yamlLines(
    [
      "app: { port: 8080,",
      "  tls: { cert: x } }",
      "tags: [a,",
      "  b]",
      "servers:",
      "  - { name: web1,",
      "      port: 81 }",
      "",
    ].join("\n"),
  );
  assert.equal(lines(["app", "port"]), 1);
  assert.equal(lines(["app", "tls", "cert"]), 2);
  assert.equal(lines(["tags", "0"]), 3);
  assert.equal(lines(["tags", "1"]), 4);
  assert.equal(lines(["servers", "0", "name"]), 6);
  assert.equal(lines(["servers", "0", "port"]), 7);
});

test("JSON is YAML: keys and items have lines too", () => {
  const lines = yamlLines(
    '{\n  "app": {\n    "port": 8080,\n    "hosts": [\n      "a",\n      "b"\n    ]\n  }\n}\n',
  );
  assert.equal(lines(["app", "port"]), 3);
  assert.equal(lines(["app", "hosts", "1"]), 6);
});

test("a path that is not there has no line; the empty path is the document", () => {
  const lines = yamlLines("\n\napp:\n  port: 8080\n");
  assert.equal(lines([]), 3);
  assert.equal(lines(["app", "workers"]), undefined);
  assert.equal(lines(["app", "port", "deeper"]), undefined);
  assert.equal(lines(["nope"]), undefined);
  assert.equal(yamlLines("tags: [a]\n")(["tags", "5"]), undefined);
  assert.equal(yamlLines("tags: [a]\n")(["tags", "x"]), undefined);
  assert.equal(yamlLines("")(["app"]), undefined);
});

test("an alias is followed to the keys of the node it names", () => {
  const lines = yamlLines("base: &base\n  port: 80\nweb: *base\n");
  assert.equal(lines(["web"]), 3);
  assert.equal(lines(["web", "port"]), 2);
});

test("fileLines: YAML and JSON files have lines, TypeScript files have none", async () => {
  const dir = await tempDir();
  await fs.writeFile(path.join(dir, "a.yaml"), "app:\n  port: 1\n");
  await fs.writeFile(path.join(dir, "b.json"), '{\n  "x": 1\n}\n');
  await fs.writeFile(path.join(dir, "c.ts"), "export default { x: 1 };\n");
  assert.equal((await fileLines(path.join(dir, "a.yaml")))?.(["app", "port"]), 2);
  assert.equal((await fileLines(path.join(dir, "b.json")))?.(["x"]), 2);
  assert.equal(await fileLines(path.join(dir, "c.ts")), undefined);
  assert.equal(await fileLines(path.join(dir, "missing.yaml")), undefined);
});
