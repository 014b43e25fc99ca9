import type { RecipeContext } from "galley";
import { appPaths, deployedTest } from "./base.ts";

/**
 * Every app's environment from the current stack state (where the database is now), restarting
 * an app whose environment changed, if it is deployed here.
 */
export default async function (r: RecipeContext) {
  await r.include("app::env");
  for (const app of r.stack.appsHere()) {
    r.service(app.name, { action: "nothing", onlyIf: deployedTest(appPaths(r, app.name)) });
  }
}
