import { fileURLToPath } from "node:url";
import type { App } from "../stacks/schema.ts";
import type { ReleaseTarget } from "../stacks/state.ts";
import { serviceTarget } from "./service-unit.ts";

// An app's releases on a host (Capistrano's layout): <deploy_to>/<app>/releases/<deployment id>,
// shared/ (linked into each release), current (the release that runs, switched atomically) and
// revisions.log (one line per switch).

/** Galley's built-in release recipes, by phase: what the rollout controller puts in run lists. */
export const releaseRecipes = {
  /** directories, the archive unpacked into releases/<id>, shared links, build, before_* hooks */
  prepare: fileURLToPath(new URL("./recipes/release-prepare.ts", import.meta.url)),
  /** current → releases/<id>, revisions.log, restart and its hooks, old releases removed */
  switch: fileURLToPath(new URL("./recipes/release-switch.ts", import.meta.url)),
  /** the app's migrate command, once per release, in it (the controller runs it on one instance) */
  migrate: fileURLToPath(new URL("./recipes/release-migrate.ts", import.meta.url)),
} as const;

/**
 * Where deployment `deploymentId` of `app` lives on its instances; undefined when the app has no
 * `release` section (the layers' deploy recipes deploy it on their own).
 *
 * @example releaseTarget(app, 42)?.path // "/srv/hello/releases/42"
 */
export function releaseTarget(app: App, deploymentId: number): ReleaseTarget | undefined {
  if (!app.release) return undefined;
  const dir = appDir(app.release.deploy_to, app.name);
  const id = String(deploymentId);
  return {
    id,
    dir,
    path: releasePath(dir, id),
    current: `${dir}/current`,
    shared: `${dir}/shared`,
    settings: app.release,
    ...(app.release.service
      ? {
          service: serviceTarget(app.name, dir, app.release.service, app.release.user, app.environment),
        }
      : {}),
  };
}

/** `<deploy_to>/<app>`, without a doubled slash. @example appDir("/srv/", "hello") // "/srv/hello" */
export function appDir(deployTo: string, app: string): string {
  return `${deployTo.replace(/\/+$/, "")}/${app}`;
}

/** The folder of release `id` in an app's dir. @example releasePath("/srv/hello", "7") // "/srv/hello/releases/7" */
export function releasePath(dir: string, id: string): string {
  return `${dir}/releases/${id}`;
}

/** The file each switch appends `<ISO time> <id> <revision>` to. */
export function revisionsLog(target: Pick<ReleaseTarget, "dir">): string {
  return `${target.dir}/revisions.log`;
}

/** A shared file or dir (relative, from the stack file) in shared/. */
export function sharedPath(target: Pick<ReleaseTarget, "shared">, relative: string): string {
  return `${target.shared}/${relative}`;
}

/** Where a shared file or dir is linked in the release. */
export function linkedPath(target: Pick<ReleaseTarget, "path">, relative: string): string {
  return `${target.path}/${relative}`;
}
