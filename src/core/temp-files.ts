import * as path from "node:path";
import { type Host, hasFs } from "../core/host.ts";

/**
 * Every temp file Galley makes beside a managed file is named `.<name>.galley-tmp-<id>`: hidden,
 * recognisable, and swept by the next apply if a killed run left it.
 *
 * @example tempPath("/etc/motd") // "/etc/.motd.galley-tmp-3fa2c1d0"
 */
export function tempPath(file: string, id = randomId()): string {
  return path.posix.join(path.posix.dirname(file), `.${path.posix.basename(file)}.galley-tmp-${id}`);
}

/** 8 random hex digits; node:crypto is loaded on first use (a run that writes nothing never loads it). */
export function randomId(): string {
  return process.getBuiltinModule("node:crypto").randomBytes(4).toString("hex");
}

// today's name, and the names earlier versions used (`.<name>.galley-<8 hex>`, `.<name>.galley-verify`,
// and `.<name>.<stamp>.tmp` in the backup tree), so that their leftovers go too
const patterns = [
  /^\..+\.galley-tmp-[0-9A-Za-z-]+$/s,
  /^\..+\.galley-[0-9a-f]{8}$/s,
  /^\..+\.galley-verify$/s,
  /^\..+\.\d{8}T\d{6}\.tmp$/s,
];
const globs = [
  ".*.galley-tmp-*",
  `.*.galley-${"[0-9a-f]".repeat(8)}`,
  ".*.galley-verify",
  `.*.${"[0-9]".repeat(8)}T${"[0-9]".repeat(6)}.tmp`,
];

/** Whether a file name is one of Galley's temp files. */
export function isTempName(name: string): boolean {
  return patterns.some((pattern) => pattern.test(name));
}

/**
 * Removes Galley's temp files (regular files and symlinks) directly in `dirs`, and anywhere below
 * `trees`. Missing folders are skipped. On a host without file-system abilities it is one command
 * for all of them (the folders go on stdin): over SSH one round trip, however many folders.
 * Returns the paths removed.
 */
export async function sweepTempFiles(host: Host, dirs: readonly string[], trees: readonly string[]) {
  if (hasFs(host)) {
    const removed: string[] = [];
    const sweep = async (dir: string, deep: boolean): Promise<void> => {
      for (const name of await host.list(dir)) {
        const full = path.join(dir, name);
        if (isTempName(name)) {
          const stat = await host.stat(full);
          if (stat?.type === "file" || stat?.type === "symlink") {
            await host.remove(full);
            removed.push(full);
            continue;
          }
        }
        if (deep && (await host.stat(full))?.type === "directory") await sweep(full, true);
      }
    };
    for (const dir of dirs) await sweep(dir, false);
    for (const tree of trees) await sweep(tree, true);
    return removed;
  }
  const names = globs.flatMap((glob, i) => [...(i === 0 ? [] : ["-o"]), "-name", glob]);
  const expression = ["(", ...names, ")", "(", "-type", "f", "-o", "-type", "l", ")", "-print", "-delete"];
  const quoted = expression.map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(" ");
  // "d<dir>" is swept one level deep, "t<tree>" all the way down; find's complaints about missing folders are dropped
  const script = `while IFS= read -r line; do
  case "$line" in
    d*) find "\${line#d}" -mindepth 1 -maxdepth 1 ${quoted} 2>/dev/null ;;
    t*) find "\${line#t}" -mindepth 1 ${quoted} 2>/dev/null ;;
  esac
done; exit 0`;
  const input = [...dirs.map((dir) => `d${dir}`), ...trees.map((tree) => `t${tree}`)].join("\n");
  const result = await host.exec(["sh", "-c", script], { input: `${input}\n` });
  return result.stdout.split("\n").filter(Boolean);
}
