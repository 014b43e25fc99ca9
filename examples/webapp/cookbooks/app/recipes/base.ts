import type { RecipeContext } from "galley";

/** Where one app lives on an instance. */
export interface AppPaths {
  /** /srv/APP */
  dir: string;
  releases: string;
  shared: string;
  /** the link to the release that runs */
  current: string;
  /** the systemd unit file */
  unit: string;
}

/** The paths of app `name` (a stack app name: lower-case letters, digits and dashes). */
export function appPaths(r: RecipeContext, name: string): AppPaths {
  const dir = `${r.attrs.app.root}/${name}`;
  return {
    dir,
    releases: `${dir}/releases`,
    shared: `${dir}/shared`,
    current: `${dir}/current`,
    unit: `/etc/systemd/system/${name}.service`,
  };
}

/** The shell test that says an app is deployed here: its current release and its unit exist. */
export function deployedTest(paths: AppPaths): string {
  return `test -L ${paths.current} && test -f ${paths.unit}`;
}

/** The apps' user, and the folders of every app of this instance's layers. */
export default function (r: RecipeContext) {
  const user: string = r.attrs.app.user;
  r.group(user, { system: true });
  r.user(user, { gid: user, system: true, home: "/nonexistent", shell: "/usr/sbin/nologin" });
  // a deploy whose release Galley makes declares these folders itself (its release recipes)
  const released = new Set(r.stack.deploying.filter((app) => app.release).map((app) => app.name));
  for (const app of r.stack.appsHere()) {
    if (released.has(app.name)) continue;
    const paths = appPaths(r, app.name);
    r.directory(paths.dir, { mode: "0755", recursive: true });
    r.directory(paths.releases, { mode: "0755" });
    // the app reads what is shared between its releases but cannot change it
    r.directory(paths.shared, { group: user, mode: "0750" });
  }
}
