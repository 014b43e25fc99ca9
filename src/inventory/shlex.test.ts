import assert from "node:assert/strict";
import { test } from "node:test";
import { shlexSplit } from "./shlex.ts";

test("host lines split like Python's shlex.split(line, comments=True)", () => {
  assert.deepEqual(shlexSplit(`web1 motd="hello world" # a comment`), ["web1", "motd=hello world"]);
  assert.deepEqual(shlexSplit(`h a='x "y"' b="x \\"y\\" \\z"`), ["h", `a=x "y"`, `b=x "y" \\z`]);
  assert.deepEqual(shlexSplit(`h a=b#c d=e`), ["h", "a=b"]);
  assert.deepEqual(shlexSplit(`h a=\\ b empty=''`), ["h", "a= b", "empty="]);
  assert.throws(() => shlexSplit(`h a="open`), /no closing quotation/);
});
