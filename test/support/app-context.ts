import * as path from "node:path";
import * as v from "valibot";
import type { StackContext } from "../../src/lifecycle/context.ts";
import { type App, stackSchema } from "../../src/stacks/schema.ts";

/**
 * A stack of one app "web" from a git URL, in a kitchen folder: what prepareApps reads (the
 * kitchen for its cache, the stack file for relative URLs). No store: preparing apps records nothing.
 */
export function appContext(kitchen: string, url: string): { context: StackContext; app: App } {
  const stack = v.parse(stackSchema, {
    name: "s",
    layers: [{ name: "app" }],
    apps: [{ name: "web", layers: ["app"], source: { type: "git", url, revision: "main" } }],
  });
  const context = {
    file: path.join(kitchen, "stacks", "s.yaml"),
    stack,
    kitchen,
    cookbooksDir: path.join(kitchen, "cookbooks"),
  } as StackContext;
  return { context, app: stack.apps[0]! };
}
