import type { RecipeContext } from "galley";

/** Stops every app here before the instance goes away, so requests in flight can finish. */
export default function (r: RecipeContext) {
  for (const app of r.stack.appsHere()) r.service(app.name, { action: "stop" });
}
