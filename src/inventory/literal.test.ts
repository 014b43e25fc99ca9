import assert from "node:assert/strict";
import { test } from "node:test";
import { pythonLiteral } from "./literal.ts";

// expected values checked against Python 3.11's ast.literal_eval (text: not a literal)
const cases: [string, unknown][] = [
  ["1", 1],
  ["-1", -1],
  ["+1", 1],
  [" 1", 1],
  ["1.5", 1.5],
  [".5", 0.5],
  ["1.", 1],
  ["1e3", 1000],
  ["1E-3", 0.001],
  ["1_000", 1000],
  ["1__0", "1__0"],
  ["010", "010"],
  ["00", 0],
  ["0x1F", 31],
  ["0o17", 15],
  ["0b101", 5],
  ["007.5", 7.5],
  ["True", true],
  ["False", false],
  ["None", null],
  ["true", "true"],
  ["yes", "yes"],
  ["'a'", "a"],
  ['"a"', "a"],
  ["'a' 'b'", "ab"],
  ["'''x'''", "x"],
  ['"a\\nb"', "a\nb"],
  ["'a\\x41'", "aA"],
  ["'\\u00e9'", "é"],
  ["r'a\\nb'", "a\\nb"],
  ["b'bytes'", "bytes"],
  ["'\\d'", "\\d"],
  ["[1, 2,]", [1, 2]],
  ["[]", []],
  ["()", []],
  ["(1)", 1],
  ["(1,)", [1]],
  ["(1, 'a')", [1, "a"]],
  ["{}", {}],
  ["{'a': 1, 2: [3]}", { a: 1, "2": [3] }],
  ["{'a': {'b': None}}", { a: { b: null } }],
  ["hello", "hello"],
  ["hello world", "hello world"],
  ["'unterminated", "'unterminated"],
  ["1 # comment", 1],
  ["'a' # c", "a"],
  ["[1, 2] x", "[1, 2] x"],
  ["-'a'", "-'a'"],
  ["--1", "--1"],
  ["1+2", "1+2"],
  ["inf", "inf"],
  ["", ""],
];

test("INI values are read as Python's ast.literal_eval reads them", () => {
  for (const [text, expected] of cases) assert.deepEqual(pythonLiteral(text), expected, JSON.stringify(text));
});

test("literals Python has but JSON cannot show (complex numbers, sets) stay text", () => {
  assert.equal(pythonLiteral("1j"), "1j");
  assert.equal(pythonLiteral("{1, 2}"), "{1, 2}");
});
