import type { RecipeContext } from "galley";

/** nginx, then the site. */
export default async function (r: RecipeContext) {
  await r.include("webapp::nginx");
  await r.include("webapp::site");
}
