// The panel's client-side routes: which page module a path shows, with its parameters. Pure (no
// DOM), so that it is unit-tested with the server's tests.

/** A page module's name (ui/pages/<name>.ts). */
export type PageName =
  | "login"
  | "stacks"
  | "stack"
  | "deployments"
  | "deployment"
  | "event"
  | "instance"
  | "report"
  | "audit"
  | "users";

/** The route table, most specific first; `:name` matches one path segment. */
export const routes: readonly (readonly [pattern: string, page: PageName])[] = [
  ["/login", "login"],
  ["/", "stacks"],
  ["/stacks", "stacks"],
  ["/stacks/:stack", "stack"],
  ["/stacks/:stack/deployments", "deployments"],
  ["/stacks/:stack/instances/:name", "instance"],
  ["/stacks/:stack/instances/:name/runs/:generation/:seq", "report"],
  ["/deployments/:id", "deployment"],
  ["/events/:id", "event"],
  ["/events/:id/instances/:name", "report"],
  ["/audit", "audit"],
  ["/users", "users"],
];

/** The parameters of `path` under `pattern`, or undefined when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split("/").filter((s) => s !== "");
  const got = path.split("/").filter((s) => s !== "");
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (const [i, part] of want.entries()) {
    const segment = got[i] ?? "";
    if (part.startsWith(":")) {
      try {
        params[part.slice(1)] = decodeURIComponent(segment);
      } catch {
        return undefined; // a malformed %-escape names nothing
      }
    } else if (part !== segment) return undefined;
  }
  return params;
}

/** The page for a path and its parameters; undefined: no such page. */
export function resolveRoute(path: string): { page: PageName; params: Record<string, string> } | undefined {
  for (const [pattern, page] of routes) {
    const params = matchPath(pattern, path);
    if (params !== undefined) return { page, params };
  }
  return undefined;
}

/** Where to go after logging in: `next` when it is a path of this panel, else the stacks page. */
export function safeNext(next: string | null | undefined): string {
  if (next === null || next === undefined || !next.startsWith("/") || next.startsWith("//")) return "/";
  if (next.startsWith("/login") || next.includes("\\")) return "/";
  return next;
}
