import * as path from "node:path";
import { fileURLToPath } from "node:url";

const galleySrc = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/**
 * Where user code called into Galley (a recipe declaring a resource), resolved on first use:
 * capturing a stack costs a few microseconds, formatting it ten times more, and most locations
 * are never shown. `entry` is the function user code called: frames from it inwards are left out,
 * and only two frames above it are kept (capturing the default ten costs five times as much).
 *
 * @example const source = new CallerLocation(recipeFile, "app::default", r.file); … source.line
 */
export class CallerLocation {
  /** `cookbook::recipe`, or the recipe file */
  readonly recipe: string;
  #holder: { stack?: string } | undefined = {};
  #fallback: string;
  #file = "";
  #line = 0;

  constructor(fallback: string, recipe: string, entry: (...args: never[]) => unknown) {
    this.recipe = recipe;
    this.#fallback = fallback;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = callerFrames;
    Error.captureStackTrace(this.#holder!, entry);
    Error.stackTraceLimit = limit;
  }

  get file(): string {
    this.#resolve();
    return this.#file;
  }

  get line(): number {
    this.#resolve();
    return this.#line;
  }

  #resolve(): void {
    if (!this.#holder) return;
    const found = locationFromStack(this.#holder.stack ?? "");
    this.#holder = undefined;
    this.#file = found?.file ?? this.#fallback;
    this.#line = found?.line ?? 0;
  }

  toJSON(): { file: string; line: number; recipe: string } {
    return { file: this.file, line: this.line, recipe: this.recipe };
  }
}

// the caller, and one more in case it is a helper inside Galley or node_modules (each frame costs ~1 µs)
const callerFrames = 2;

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
