import { readFileSync } from "node:fs";
import type { RecipeContext } from "../../core/recipe.ts";
import type { PreparedApp } from "../apps.ts";

/**
 * Galley's own first recipe of every deploy: ships each deployed app's archive (fetched on the
 * control machine) to the instance, where the layers' deploy recipes find it at
 * `r.stack.deploying[i].archive`. An archive already there is left alone (same revision, same bytes).
 */
export default function appArchives(r: RecipeContext): void {
  for (const app of r.stack.deploying as readonly PreparedApp[]) {
    const dir = app.archive.slice(0, app.archive.lastIndexOf("/"));
    r.directory(dir, { mode: 0o755, recursive: true });
    r.file(app.archive, {
      contentBase64: readFileSync(app.localArchive).toString("base64"),
      mode: 0o644,
    });
  }
}
