import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

// The folder rule of `npm run lint` (.dependency-cruiser.cjs): it holds on the tree, and it
// fails on a copy of the tree with back-edges injected.

const root = path.resolve(import.meta.dirname, "..");
const depcruise = path.join(root, "node_modules", "dependency-cruiser", "bin", "dependency-cruiser.mjs");

interface Violation {
  from: string;
  to: string;
  rule: { name: string };
}

/** Runs the lint's dependency rule on `dir` (which holds src/, tsconfig.json and the config). */
async function cruise(dir: string): Promise<Violation[]> {
  const result = await promisify(execFile)(
    process.execPath,
    [depcruise, "src", "--config", ".dependency-cruiser.cjs", "--output-type", "json"],
    { cwd: dir, maxBuffer: 64 * 1024 * 1024, timeout: 120_000 },
  ).catch((error: { stdout?: string }) => {
    // depcruise exits non-zero when it finds violations; the JSON is on stdout all the same
    if (!error.stdout) throw error;
    return { stdout: error.stdout };
  });
  return (JSON.parse(result.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

test("the tree keeps the folder rule", { timeout: 120_000 }, async () => {
  assert.deepEqual(await cruise(root), []);
});

test("a back-edge, a sibling import and a folder cycle each fail the rule", {
  timeout: 120_000,
}, async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "galley-layers-"));
  try {
    await fs.cp(path.join(root, "src"), path.join(dir, "src"), { recursive: true });
    for (const file of ["tsconfig.json", ".dependency-cruiser.cjs"])
      await fs.copyFile(path.join(root, file), path.join(dir, file));
    const inject = async (file: string, line: string) => {
      const target = path.join(dir, file);
      await fs.writeFile(target, `${line}\n${await fs.readFile(target, "utf8")}`);
    };
    // core reaching up for a type: the edge the rule exists for
    await inject("src/core/compile.ts", 'import type { StackView } from "../stacks/state.ts";');
    // cookbooks reaching the fleet above it
    await inject("src/cookbooks/runlist.ts", 'import "../fleet/push.ts";');
    // two folders of one layer
    await inject("src/stacks/schema.ts", 'import "../inventory/model.ts";');
    // a new folder module that imports upward and is imported back: a cycle across folders
    await fs.writeFile(path.join(dir, "src/hosts/probe.ts"), 'import "../cli/main.ts";\nexport {};\n');
    await inject("src/cli/output.ts", 'import "../hosts/probe.ts";');
    // a test may assemble every layer: not a violation
    await inject("src/core/converge.test.ts", 'import "../cli/main.ts";');

    const found = (await cruise(dir)).map((v) => `${v.rule.name} ${v.from} -> ${v.to}`);
    const expect = (rule: string, from: string, to: string) =>
      assert.ok(
        found.includes(`${rule} ${from} -> ${to}`),
        `expected ${rule} ${from} -> ${to} among:\n${found.join("\n")}`,
      );
    expect("layer-core", "src/core/compile.ts", "src/stacks/state.ts");
    expect("layer-cookbooks", "src/cookbooks/runlist.ts", "src/fleet/push.ts");
    expect("layer-sibling-stacks", "src/stacks/schema.ts", "src/inventory/model.ts");
    expect("layer-hosts", "src/hosts/probe.ts", "src/cli/main.ts");
    assert.ok(
      found.some((f) => f.startsWith("no-folder-cycle ")),
      `expected a no-folder-cycle violation among:\n${found.join("\n")}`,
    );
    assert.ok(!found.some((f) => f.includes("converge.test.ts")), "a test file is exempt");
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});
