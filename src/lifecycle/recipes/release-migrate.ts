import type { RecipeContext } from "../../core/recipe.ts";

// runs the migration and leaves the marker only when it succeeded
const migrateOnce = 'sh -c "$1" && touch "$2"';

/**
 * A deployment's migration, given as a command: run in the new release (as the release's user,
 * with the app's environment), leaving `.galley-migrated` in the release once it finished, so it
 * never runs twice for one release. The rollout controller runs this recipe on one instance only,
 * under the deployment's claim in the store, after prepare and before any switch.
 */
export default function releaseMigrate(r: RecipeContext): void {
  for (const app of r.stack.deploying) {
    const target = app.release;
    const migrate = target?.settings.migrate;
    if (!target || typeof migrate !== "string") continue;
    const marker = `${target.path}/.galley-migrated`;
    r.execute(`${app.name} release ${target.id}: migrate`, {
      command: ["sh", "-c", migrateOnce, "sh", migrate, marker],
      cwd: target.path,
      env: {
        ...app.environment,
        GALLEY_APP: app.name,
        GALLEY_RELEASE: target.path,
        GALLEY_DEPLOYMENT: target.id,
        GALLEY_REVISION: app.revision,
      },
      ...(target.settings.user === undefined ? {} : { user: target.settings.user }),
      creates: marker,
    });
  }
}
