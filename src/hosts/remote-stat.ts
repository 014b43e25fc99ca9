import type { Stat } from "../core/host.ts";

// one NUL-terminated field each: names may hold any byte but NUL
const fields = ["%p", "%y", "%m", "%u", "%g", "%U", "%G", "%s", "%T@", "%l"];
const format = fields.map((field) => `${field}\\0`).join("");

/**
 * One `find` for many paths: each path is a starting point, `-maxdepth 0` stops there, and
 * -printf describes it as lstat does (find does not follow symlinks by default). %u/%g print the
 * owner's name, or the number when no user has it, which is what LocalHost reports.
 */
export function statArgv(paths: readonly string[]): string[] {
  // a starting point that looks like an expression ("-x", "!", "(") must not be taken for one
  const args = paths.map((path) => (path.startsWith("/") ? path : `./${path}`));
  return ["env", "LC_ALL=C", "find", ...args, "-maxdepth", "0", "-printf", format];
}

/** The stats `find -printf` printed, by the path as it was asked. */
export function parseStatRecords(output: Buffer): Map<string, Stat> {
  const values: string[] = [];
  let start = 0;
  for (let end = output.indexOf(0, start); end !== -1; end = output.indexOf(0, start)) {
    values.push(output.toString("utf8", start, end));
    start = end + 1;
  }
  const stats = new Map<string, Stat>();
  for (let i = 0; i + fields.length <= values.length; i += fields.length) {
    const [name, kind, mode, owner, group, uid, gid, size, mtime, target] = values.slice(
      i,
      i + fields.length,
    );
    const type = kind === "f" ? "file" : kind === "d" ? "directory" : kind === "l" ? "symlink" : "other";
    const stat: Stat = {
      type,
      mode: Number.parseInt(mode!, 8),
      uid: Number(uid),
      gid: Number(gid),
      owner: owner!,
      group: group!,
      size: Number(size),
      mtimeMs: milliseconds(mtime!),
    };
    if (type === "symlink") stat.target = target!;
    stats.set(name!.startsWith("/") ? name! : name!.slice(2), stat);
  }
  return stats;
}

/** `%T@` (seconds with a nanosecond fraction) as Node computes mtimeMs: s * 1e3 + ns / 1e6. */
function milliseconds(text: string): number {
  const [seconds = "0", fraction = ""] = text.split(".");
  const nanoseconds = Number(fraction.padEnd(9, "0").slice(0, 9));
  const whole = Number(seconds);
  return whole * 1e3 + (text.startsWith("-") ? -nanoseconds : nanoseconds) / 1e6;
}
