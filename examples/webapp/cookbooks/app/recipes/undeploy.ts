import type { RecipeContext } from "galley";
import { appPaths } from "./base.ts";

/** Removes the apps of this run from the instance: the service stopped and gone, then its folder. */
export default function (r: RecipeContext) {
  r.execute("systemctl daemon-reload", { action: "nothing" });
  for (const app of r.stack.deploying) {
    const paths = appPaths(r, app.name);
    const service = r.service(app.name, { action: ["stop", "disable"] });
    r.file(paths.unit, {
      action: "delete",
      requires: service,
      notifies: { action: "run", resource: "execute[systemctl daemon-reload]", timing: "immediate" },
    });
    r.directory(paths.dir, { action: "delete", recursive: true, requires: service });
  }
}
