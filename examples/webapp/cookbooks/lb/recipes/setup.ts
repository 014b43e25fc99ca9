import type { RecipeContext } from "galley";

/** HAProxy from Debian's packages, running and started at boot. */
export default function (r: RecipeContext) {
  // the layer installs it before setup; declared here too so the recipe also works on its own
  r.package("haproxy");
  r.service("haproxy", { action: ["enable", "start"], requires: "package[haproxy]" });
}
