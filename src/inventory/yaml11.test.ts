import assert from "node:assert/strict";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { parseAnsibleYaml } from "./yaml11.ts";

// expected values checked against PyYAML's safe_load, which Ansible uses
test("YAML is read as Ansible reads it: YAML 1.1 as PyYAML resolves it", () => {
  const text = `
on_off: [yes, no, on, off, Yes, TRUE]
letters: [y, n, Y, N]
numbers: [0777, 0x1f, 1_000, 08, 1e3, 1.5e3, 1.0e+3, .5, 1:30]
day: 2024-01-02
nothing: [~, null, ]
unsafe: !unsafe "{{ not a template }}"
merged: { <<: { a: 1, b: 2 }, b: 3 }
dup: 1
dup: 2
`;
  assert.deepEqual(parseAnsibleYaml("vars.yml", text).value, {
    on_off: [true, false, true, false, true, true],
    letters: ["y", "n", "Y", "N"],
    numbers: [511, 31, 1000, "08", "1e3", "1.5e3", 1000, 0.5, 90],
    day: "2024-01-02",
    nothing: [null, null],
    unsafe: "{{ not a template }}",
    merged: { a: 1, b: 3 },
    dup: 2,
  });
});

test("lines of keys are known, syntax errors and vault values name the line", () => {
  assert.equal(parseAnsibleYaml("f.yml", "a: 1\nb:\n  c: 2\n").lineOf(["b", "c"]), 3);
  assert.throws(
    () => parseAnsibleYaml("f.yml", "a: 1\nb: [\n"),
    (e: GalleyError) => e.code === "INVENTORY_INVALID" && /^f\.yml:\d+: /.test(e.message),
  );
  assert.throws(
    () => parseAnsibleYaml("f.yml", "a: 1\nb: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n"),
    (e: GalleyError) => /^f\.yml:2: .*!vault/.test(e.message) && /galley secrets/.test(e.hint ?? ""),
  );
});
