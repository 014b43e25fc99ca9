import * as v from "valibot";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { Host } from "../core/host.ts";
import type { Change, CompileContext, ResourceType } from "../core/resource.ts";

/**
 * Test support for resource types: the type-level contract the engine enforces. Runs one
 * converge (read, diff, apply), checks that diff is empty right after apply, then a second
 * converge that must change nothing. Returns the first run's changes.
 */
export async function convergeTwice<P>(
  host: Host,
  type: ResourceType<P>,
  input: Record<string, unknown>,
  options: { action?: string; stateDir?: string; baseDir?: string } = {},
): Promise<Change[]> {
  const action = options.action ?? type.actions[0]!;
  const props = await prepare(type, input, options.baseDir);
  const context = { stateDir: options.stateDir ?? (await tempDir("galley-state-")) };
  const first = type.diff(await type.read(host, props), props, action);
  if (first.length > 0) await type.apply(host, props, action, await type.read(host, props), context);
  // an imperative action (run, restart) acts every time: nothing more to check
  if (type.imperative?.includes(action)) return first;
  const after = type.diff(await type.read(host, props), props, action);
  assert.deepEqual(after, [], `${type.type}: diff right after apply must be empty`);
  const second = type.diff(await type.read(host, props), props, action);
  assert.deepEqual(second, [], `${type.type}: the second converge must change nothing`);
  return first;
}

/** Validates raw properties with the type's schema (filling the name property) and compiles them. */
export async function prepare<P>(
  type: ResourceType<P>,
  input: Record<string, unknown>,
  baseDir = "/nonexistent",
) {
  const props = v.parse(type.schema, input);
  if (!type.compile) return props;
  const context: CompileContext = {
    cookbook: "test",
    baseDir,
    async cookbookFile(kind, name) {
      const file = path.join(baseDir, kind, name);
      return { path: file, data: await fs.readFile(file) };
    },
    cache: new Map(),
  };
  return type.compile(props, context);
}

const tempDirs: string[] = [];

/** A fresh temporary directory, removed with its contents when the test process exits (no cleanup needed). */
export async function tempDir(prefix = "galley-test-"): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  if (tempDirs.length === 0) process.once("exit", removeTempDirs);
  tempDirs.push(dir);
  return dir;
}

function removeTempDirs(): void {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}
