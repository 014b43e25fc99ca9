import type { RecipeContext } from "galley";
import { appPaths } from "./base.ts";

/** The apps this run writes the environment of: the ones it deploys, else every app here. */
export function appsOfRun(r: RecipeContext): string[] {
  if (r.stack.event === "deploy") return r.stack.deploying.map((app) => app.name);
  return r.stack.appsHere().map((app) => app.name);
}

/** Whether this run deploys `app` through Galley's releases (its stack-file `release` section). */
export function releasedHere(r: RecipeContext, app: string): boolean {
  return r.stack.deploying.some((deploying) => deploying.name === app && deploying.release !== undefined);
}

/**
 * The database settings an app gets from the stack state: the first online instance of the
 * database layer, and the database's name, user and password from the attributes. No database
 * online: DB_HOST is empty, and the app says so.
 */
export function databaseEnvironment(r: RecipeContext): Record<string, string> {
  const db = r.attrs.db ?? {};
  for (const key of ["name", "user", "password"]) {
    if (typeof db[key] !== "string" || db[key] === "") {
      throw new Error(`the attribute db.${key} is not set: set it in the stack's attributes`);
    }
  }
  const server = r.stack.online(r.attrs.app.db_layer).find((instance) => instance.address !== undefined);
  return {
    DB_HOST: server?.address ?? "",
    DB_INSTANCE: server?.hostname ?? "",
    DB_PORT: String(db.port),
    DB_NAME: db.name,
    DB_USER: db.user,
    DB_PASSWORD: db.password,
  };
}

/** A value as systemd's EnvironmentFile reads it back: double-quoted, with \ " ` $ escaped. */
export function envValue(app: string, key: string, value: string): string {
  if (/[\n\r]/.test(value)) throw new Error(`app ${app}: the value of ${key} spans lines`);
  return `"${value.replace(/[\\"`$]/g, (c) => `\\${c}`)}"`;
}

/**
 * Every app's environment file, /srv/APP/shared/env (systemd's EnvironmentFile): the app's
 * environment from the stack, its name, and its database. A change restarts the app, through
 * `service[APP]`, which the recipe including this one declares (deploy: started; configure:
 * only when the app is deployed).
 */
export default function (r: RecipeContext) {
  const database = databaseEnvironment(r);
  for (const name of appsOfRun(r)) {
    const app = r.stack.app(name);
    const paths = appPaths(r, name);
    r.template(`${paths.shared}/env`, {
      source: "env.eta",
      variables: {
        app: name,
        entries: Object.entries({ ...app.environment, APP_NAME: name, ...database }).map(([key, value]) => [
          key,
          envValue(name, key, value),
        ]),
      },
      mode: "0600",
      // an undeployed app has no folder left to write into
      onlyIf: `test -d ${paths.shared}`,
      sensitive: true,
      // a deploy whose release Galley makes restarts the app itself, once it switched
      ...(releasedHere(r, name)
        ? {}
        : { notifies: { action: "restart", resource: `service[${name}]`, timing: "delayed" as const } }),
    });
  }
}
