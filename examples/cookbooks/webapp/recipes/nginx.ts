import type { RecipeContext } from "galley";

/** nginx from the distribution's packages, running and enabled at boot. */
export default function (r: RecipeContext) {
  r.package("nginx", { updateCache: true });
  // a config change is checked before nginx is asked to reload it
  r.execute("nginx -t", { command: ["nginx", "-t", "-q"], action: "nothing" });
  r.service("nginx", { action: ["enable", "start"], requires: "package[nginx]" });
}
