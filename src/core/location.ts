import * as path from "node:path";
import { fileURLToPath } from "node:url";

const galleySrc = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * Where user code called into Galley, resolved on first use: capturing a stack costs a few
 * microseconds, formatting it ten times more, and most locations are never shown.
 *
 * @example const where = lazyCallerLocation(fallbackFile); … where.line
 */
export function lazyCallerLocation(fallback: string): { readonly file: string; readonly line: number } {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, lazyCallerLocation);
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
