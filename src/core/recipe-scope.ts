import { AsyncLocalStorage } from "node:async_hooks";
import { pathToFileURL } from "node:url";
import { GalleyError } from "./errors.ts";
import { displayPath } from "./location.ts";
import { loadedModules } from "./modules.ts";

/** The recipe (or resource type) whose code runs: timers and callbacks it starts carry it along. */
export interface RecipeScope {
  label: string;
  file: string;
}

/** Runs recipe code in its scope, so that a failure it leaves for later can still name it. */
export const recipeScope = new AsyncLocalStorage<RecipeScope>();

/** The compile deadline by default: recipes only declare, so two minutes is far beyond any real one. */
export const defaultCompileSeconds = 120;

/**
 * The compile deadline in milliseconds: `GALLEY_COMPILE_TIMEOUT` (seconds) when set, else 120 s.
 *
 * @example GALLEY_COMPILE_TIMEOUT=300 galley apply web
 */
export function compileDeadlineMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.GALLEY_COMPILE_TIMEOUT;
  if (raw === undefined || raw === "") return defaultCompileSeconds * 1000;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new GalleyError("USAGE", `GALLEY_COMPILE_TIMEOUT=${raw} is not a number of seconds`, {
      hint: `set it to a positive number of seconds (default ${defaultCompileSeconds}), or unset it`,
    });
  }
  return seconds * 1000;
}

// compiles waiting on their recipes: told when the event loop has nothing left that could settle them
const idleWatchers = new Set<() => void>();
let watching = false;

/**
 * Settles `work` or fails with RECIPE_FAILED naming what still runs (`running()`): after `ms`, or
 * at once when the process has nothing left to wait for (a promise nothing will ever settle).
 */
export function withCompileDeadline<T>(
  work: Promise<T>,
  ms: number,
  running: () => RecipeScope | undefined,
): Promise<T> {
  if (!watching) {
    watching = true;
    // Node would exit 13 ("unsettled top-level await") with nothing but a warning
    process.on("beforeExit", () => {
      for (const watcher of [...idleWatchers]) watcher();
    });
  }
  return new Promise<T>((resolve, reject) => {
    const stuck = (why: string) => {
      const scope = running();
      const what = scope ? `recipe ${scope.label} (${displayPath(scope.file)})` : "a recipe";
      reject(
        new GalleyError("RECIPE_FAILED", `${what} ${why}`, {
          hint: "a recipe must return (or resolve) once it has declared its resources: await what it starts, and leave nothing pending",
        }),
      );
    };
    const timer = setTimeout(
      () => stuck(`did not finish within ${ms / 1000} s (the compile deadline, GALLEY_COMPILE_TIMEOUT)`),
      ms,
    );
    // the deadline alone must not keep the process alive: that is how a promise nobody settles shows
    timer.unref();
    const idle = () => stuck("never finishes: it waits on a promise that nothing is left to settle");
    idleWatchers.add(idle);
    work.then(resolve, reject).finally(() => {
      clearTimeout(timer);
      idleWatchers.delete(idle);
    });
  });
}

/**
 * The RECIPE_FAILED for an error no one caught (a timer's throw, a promise's rejection) when
 * recipe code raised it: found by the scope it ran in, or by a recipe file in its stack trace.
 * Undefined when it did not come from a recipe.
 */
export function blameRecipe(error: unknown): GalleyError | undefined {
  const stack = error instanceof Error ? (error.stack ?? "") : "";
  let scope = recipeScope.getStore();
  let line: string | undefined;
  for (const file of scope ? [scope.file] : loadedModules) {
    const match = new RegExp(`${escapeRegExp(pathToFileURL(file).href)}:(\\d+)`).exec(stack);
    if (match) {
      scope ??= { label: displayPath(file), file };
      line = match[1];
      break;
    }
  }
  if (!scope) return undefined;
  const message = error instanceof Error ? error.message : String(error);
  return new GalleyError(
    "RECIPE_FAILED",
    `recipe ${scope.label} (${displayPath(scope.file)}${line ? `:${line}` : ""}) failed in code it left running (a timer, a callback or a promise nobody awaited): ${message}`,
    {
      hint: "await everything the recipe starts, or catch its errors: a recipe must be done when it returns",
    },
  );
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
