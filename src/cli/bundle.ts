import * as fs from "node:fs/promises";
import * as path from "node:path";
import { exitCodes } from "../core/errors.ts";
import { writeJson } from "./output.ts";

const options = {
  kitchen: {
    type: "string",
    description:
      "the kitchen folder, holding cookbooks.yaml and cookbooks.lock (default: the current folder)",
  },
  out: {
    type: "string",
    description: "the bundle file to write (default: <id>.tgz in the current folder)",
  },
  json: { type: "boolean", default: false, description: "print one JSON object instead of text" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const;

interface Values {
  kitchen?: string;
  out?: string;
  json: boolean;
}

/** `galley bundle`: the locked cookbooks and their lock in one content-addressed archive. */
export const bundleCommand = {
  summary: "pack the locked cookbooks and cookbooks.lock into one content-addressed archive",
  usage:
    "[RUNLIST…] [--out FILE] [--kitchen DIR] [--json]   (a run list given is recorded as the bundle's default)",
  options,
  async run(values: Values, positionals: string[]): Promise<number> {
    const root = path.resolve(values.kitchen ?? ".");
    // the archive code loads only for this command
    const [{ lockedKitchen, cacheDir }, { lockedCookbookDir, lockFileName }, { createBundle }] =
      await Promise.all([
        import("../cookbooks/kitchen.ts"),
        import("../cookbooks/lock.ts"),
        import("../cookbooks/bundle.ts"),
      ]);
    const { lock } = await lockedKitchen(root);
    const lockText = await fs.readFile(path.join(root, lockFileName), "utf8");
    const cache = cacheDir();
    const cookbooks = Object.entries(lock.cookbooks).map(([name, entry]) => ({
      name,
      version: entry.version,
      sha256: entry.sha256,
      dir: lockedCookbookDir(root, cache, name, entry),
    }));
    const created = await createBundle(
      { cookbooks, lock: lockText, ...(positionals.length ? { runLists: { default: positionals } } : {}) },
      values.out ? { file: path.resolve(values.out) } : { dir: process.cwd() },
    );
    if (values.json) writeJson({ ...created, cookbooks: cookbooks.map(({ dir: _dir, ...c }) => c) });
    else {
      process.stdout.write(`bundle ${created.id}\n  ${created.file} (${created.bytes} bytes)\n`);
      for (const c of cookbooks) process.stdout.write(`  ${c.name} ${c.version}\n`);
    }
    return exitCodes.ok;
  },
};
