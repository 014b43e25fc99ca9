import type { RecipeContext } from "galley";

/** Node.js, the apps' user and every app's folders, ready for the first deploy. */
export default async function (r: RecipeContext) {
  // the layer installs it before setup; declared here too so the recipe also works on its own
  r.package("nodejs");
  await r.include("app::base");
}
