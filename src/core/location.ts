import * as path from "node:path";
import { fileURLToPath } from "node:url";

const galleySrc = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * The file and line of the user code that called into Galley: the first stack frame outside
 * Galley's own sources (a recipe, or a helper module of a cookbook).
 */
export function callerLocation(): { file: string; line: number } | undefined {
  const stack = new Error().stack ?? "";
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
