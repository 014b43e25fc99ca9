import type { RecipeContext } from "galley";
import { appPaths } from "./base.ts";

// the archive is unpacked beside its final place and renamed: a release is there whole or not at all
const extract = [
  "set -e",
  'rm -rf "$2.partial"',
  'mkdir -p "$2.partial"',
  'tar -xzf "$1" -C "$2.partial" --no-same-owner',
  'mv "$2.partial" "$2"',
].join("\n");

/**
 * Deploys the apps of this run. An app with a `release` section in the stack file gets its
 * release from Galley (releases/<deployment>, `current` switched, then its `restart`): here
 * systemd only learns to run `node <current>/server.js` as the release user, enabled, never
 * restarted. Any other app the old way: its revision's archive (which Galley ships to the host)
 * becomes the release /srv/APP/releases/REVISION, `current` points at it, and the app restarts
 * when its release, its unit or its environment changed; deploying the revision that already
 * runs changes nothing.
 */
export default async function (r: RecipeContext) {
  await r.include("app::base");
  const user: string = r.attrs.app.user;
  r.execute("systemctl daemon-reload", { action: "nothing" });

  for (const app of r.stack.deploying) {
    if (app.release) {
      const release = app.release;
      r.template(appPaths(r, app.name).unit, {
        source: "app.service.eta",
        variables: {
          app: app.name,
          user: release.settings.user ?? user,
          current: release.current,
          env: `${appPaths(r, app.name).shared}/env`,
          node: r.attrs.app.node,
          main: r.attrs.app.main,
        },
        mode: "0644",
        notifies: { action: "run", resource: "execute[systemctl daemon-reload]", timing: "immediate" },
      });
      continue;
    }
    if (!/^[A-Za-z0-9._-]+$/.test(app.revision)) {
      throw new Error(`app ${app.name}: revision "${app.revision}" cannot name a release folder`);
    }
    const paths = appPaths(r, app.name);
    const release = `${paths.releases}/${app.revision}`;
    const restart = { action: "restart", resource: `service[${app.name}]`, timing: "delayed" as const };

    const unpacked = r.execute(`unpack ${app.name} ${app.revision}`, {
      command: ["sh", "-c", extract, "sh", app.archive, release],
      creates: release,
      requires: `directory[${paths.releases}]`,
    });
    r.file(`${release}/REVISION`, { content: `${app.revision}\n`, mode: "0644", requires: unpacked });
    r.link(paths.current, { to: release, requires: unpacked, notifies: restart });
    r.template(paths.unit, {
      source: "app.service.eta",
      variables: {
        app: app.name,
        user,
        current: paths.current,
        env: `${paths.shared}/env`,
        node: r.attrs.app.node,
        main: r.attrs.app.main,
      },
      mode: "0644",
      notifies: [
        { action: "run", resource: "execute[systemctl daemon-reload]", timing: "immediate" },
        restart,
      ],
    });
  }

  await r.include("app::env");
  for (const app of r.stack.deploying) {
    // Galley's switch starts a released app (its `restart`), once `current` is there
    r.service(app.name, { action: app.release ? "enable" : ["enable", "start"] });
  }
}
