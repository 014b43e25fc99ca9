import assert from "node:assert/strict";
import { test } from "node:test";
import { changesOf, diffLines, isSensitive, propertyLines, valueText } from "./ui/diff-lines.ts";

test("diffLines: the header, hunks, added, removed and context lines of a unified diff", () => {
  const diff = [
    "--- /etc/app.conf",
    "+++ /etc/app.conf",
    "@@ -1,3 +1,3 @@",
    " port 80",
    "-workers 2",
    "+workers 4",
    "+++ a line that looks like a header",
    "\\ No newline at end of file",
  ].join("\n");
  assert.deepEqual(
    diffLines(diff).map((l) => l.kind),
    ["file", "file", "hunk", "context", "del", "add", "add", "note"],
  );
  assert.equal(diffLines(diff)[4]?.text, "-workers 2");
  assert.deepEqual(diffLines(""), []);
});

test("propertyLines: -old and +new, a created property only +", () => {
  assert.deepEqual(propertyLines({ property: "mode", from: "0644", to: "0600" }), [
    { kind: "del", text: "-mode: 0644" },
    { kind: "add", text: "+mode: 0600" },
  ]);
  assert.deepEqual(propertyLines({ property: "ensure", to: "present" }), [
    { kind: "add", text: "+ensure: present" },
  ]);
  assert.deepEqual(propertyLines({ property: "mtime" }), [{ kind: "context", text: " mtime" }]);
  assert.deepEqual(propertyLines({ property: "command", to: "sh -c '\n  exit 0\n'" }), [
    { kind: "add", text: "+command: sh -c '" },
    { kind: "add", text: "+  exit 0" },
    { kind: "add", text: "+'" },
  ]);
});

test("valueText: strings as they are, other values as JSON", () => {
  assert.equal(valueText("a b"), "a b");
  assert.equal(valueText(["x", 1]), '["x",1]');
  assert.equal(valueText(false), "false");
});

test("isSensitive and changesOf: a redacted change is marked; malformed diffs are dropped", () => {
  assert.equal(isSensitive({ property: "content", from: "(sensitive)", to: "(sensitive)" }), true);
  assert.equal(isSensitive({ property: "content", to: "sha256:abc" }), false);
  assert.deepEqual(changesOf([{ property: "a" }, null, 3, { nope: 1 }]), [{ property: "a" }]);
  assert.deepEqual(changesOf(undefined), []);
});
