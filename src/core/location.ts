import * as path from "node:path";
import { fileURLToPath } from "node:url";

const galleySrc = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * Where user code called into Galley, resolved on first use: capturing a stack costs a few
 * microseconds, formatting it ten times more, and most locations are never shown. `entry` is the
 * function user code called: frames from it inwards are left out, and only a few frames above it
 * are kept (capturing the default ten costs three times as much).
 *
 * @example const where = lazyCallerLocation(fallbackFile, r.file); … where.line
 */
export function lazyCallerLocation(
  fallback: string,
  entry: (...args: never[]) => unknown,
): { readonly file: string; readonly line: number } {
  const holder: { stack?: string } = {};
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = callerFrames;
  Error.captureStackTrace(holder, entry);
  Error.stackTraceLimit = limit;
  let resolved: { file: string; line: number } | undefined;
  const resolve = () => {
    resolved ??= locationFromStack(holder.stack ?? "") ?? { file: fallback, line: 0 };
    return resolved;
  };
  return {
    get file() {
      return resolve().file;
    },
    get line() {
      return resolve().line;
    },
  };
}

// the caller, and a few more in case it is a helper inside Galley or node_modules
const callerFrames = 4;

/** The first frame of a formatted stack that is outside Galley's own sources and node_modules. */
export function locationFromStack(stack: string): { file: string; line: number } | undefined {
  for (const frame of stack.split("\n").slice(1)) {
    const match = /\(?((?:file:\/\/)?\/[^():]+):(\d+):\d+\)?\s*$/.exec(frame);
    if (!match) continue;
    const file = match[1]!.startsWith("file://") ? fileURLToPath(match[1]!) : match[1]!;
    if (file.startsWith(galleySrc + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`))
      continue;
    return { file, line: Number(match[2]) };
  }
  return undefined;
}

/** A path relative to the working directory when it is below it: shorter in messages. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}
