import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { getCallSites } from "node:util";

const galleySrc = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * The file and line of the user code that called into Galley: the first stack frame outside
 * Galley's own sources (a recipe, or a helper module of a cookbook).
 */
export function callerLocation(): { file: string; line: number } | undefined {
  for (const site of getCallSites(16)) {
    const name = site.scriptName;
    if (!name || name.startsWith("node:")) continue;
    const file = name.startsWith("file://") ? fileURLToPath(name) : name;
    if (file.startsWith(galleySrc + path.sep) || file.includes(`${path.sep}node_modules${path.sep}`))
      continue;
    return { file, line: site.lineNumber };
  }
  return undefined;
}

/** A path relative to the working directory when it is below it: shorter in messages. */
export function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}
