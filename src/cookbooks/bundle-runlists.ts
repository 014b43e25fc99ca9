// A bundle's run lists name only its own cookbooks' recipes: never a path, a recipe file or another cookbook.

const runListName = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const runListItem = /^([a-z][a-z0-9_-]*)(?:::([A-Za-z0-9_][A-Za-z0-9_.-]*))?$/;

/**
 * The first problem of a bundle's run lists, described; undefined when every list has a plain name and
 * every item is `cookbook` or `cookbook::recipe` of one of `cookbooks` whose recipe file `missing` does
 * not report (it returns the file it looked for when the bundle lacks it).
 */
export function runListsProblem(
  runLists: Readonly<Record<string, readonly string[]>>,
  cookbooks: ReadonlySet<string>,
  missing: (cookbook: string, recipe: string) => string | undefined,
): string | undefined {
  for (const [name, items] of Object.entries(runLists)) {
    if (!runListName.test(name)) return `run list ${JSON.stringify(name)} has a name that is not plain`;
    const problem = runListItemsProblem(items, cookbooks);
    if (problem) return `run list ${name}: ${problem}`;
    for (const item of items) {
      const [cookbook, recipe = "default"] = item.split("::") as [string, string?];
      const file = missing(cookbook, recipe);
      if (file)
        return `run list ${name}: item ${JSON.stringify(item)} names a recipe the bundle does not hold (${file})`;
    }
  }
  return undefined;
}

/**
 * The first item that is not `cookbook` or `cookbook::recipe` of one of `cookbooks`, described; undefined
 * when all are. A recipe file, a path or a cookbook from elsewhere never runs from a bundle.
 *
 * @example runListItemsProblem(["/tmp/evil.ts"], new Set(["web"])) // 'item "/tmp/evil.ts" is a path…'
 */
export function runListItemsProblem(
  items: readonly string[],
  cookbooks: ReadonlySet<string>,
): string | undefined {
  for (const item of items) {
    const match = runListItem.exec(item);
    if (!match) {
      const what =
        item.includes("/") || /\.[cm]?[jt]s$/.test(item) ? "a path to a recipe file" : "not a recipe name";
      return `item ${JSON.stringify(item)} is ${what}: a bundle runs only cookbook or cookbook::recipe of its own cookbooks`;
    }
    if (!cookbooks.has(match[1]!)) {
      return `item ${JSON.stringify(item)} names cookbook ${match[1]}, which is not in the bundle (it holds ${[...cookbooks].join(", ") || "none"})`;
    }
  }
  return undefined;
}
