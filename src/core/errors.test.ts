import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import { test } from "node:test";
import { errorCodes, exitCodes } from "./errors.ts";

test("every error code is in docs/cli.md's table with the exit code it gives, and every exit code in its exit table", async () => {
  const doc = await fs.readFile(new URL("../../docs/cli.md", import.meta.url), "utf8");
  const rows = doc.split("\n").filter((line) => line.startsWith("| "));
  for (const [code, exit] of Object.entries(errorCodes)) {
    const row = rows.find((line) => line.split("|")[1]!.includes(`\`${code}\``));
    assert.ok(row, `${code} is not documented in docs/cli.md`);
    assert.equal(row.split("|")[2]!.trim(), String(exit), `${code}: the docs say another exit code`);
  }
  for (const exit of Object.values(exitCodes)) {
    assert.ok(
      rows.some((line) => line.split("|")[1]!.trim() === String(exit)),
      `exit code ${exit} is not in docs/cli.md's table`,
    );
  }
});
