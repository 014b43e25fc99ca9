import type { RecipeContext } from "../../core/recipe.ts";
import type { DeployingApp, ReleaseTarget, ServiceTarget } from "../../stacks/state.ts";
import { linkedPath, sharedPath } from "../releases.ts";
import { envFileText, unitText } from "../service-unit.ts";

// The archive is unpacked beside its final place and renamed, so a release is there whole or not
// at all; paths the release shares are removed from it first, the links take their place.
const unpack = [
  "set -e",
  "archive=$1 release=$2 owner=$3",
  "shift 3",
  'rm -rf "$release.partial"',
  'mkdir -p "$release.partial"',
  'tar -xzf "$archive" -C "$release.partial" --no-same-owner',
  'for p in "$@"; do rm -rf "$release.partial/$p"; mkdir -p "$(dirname "$release.partial/$p")"; done',
  'if [ -n "$owner" ]; then chown -R "$owner:" "$release.partial"; fi',
  'mv -T "$release.partial" "$release"',
].join("\n");

// runs a command once per release: a marker file in the release says it ran
const once = 'sh -c "$1" && touch "$2"';

/**
 * Galley's prepare phase of a deployment, for each deployed app with a `release` section: its
 * folders, the archive (shipped by app-archives, which runs first) unpacked into releases/<id>,
 * its REVISION file, the shared files and dirs linked into it, `build`, the before_migrate and
 * before_symlink hooks that are commands, and the systemd unit of `release.service` with its
 * environment file. A shared file missing from shared/ fails here, before any switch. Nothing
 * here touches `current`.
 */
export default function releasePrepare(r: RecipeContext): void {
  for (const app of r.stack.deploying) {
    if (app.release) prepare(r, app, app.release);
  }
}

function prepare(r: RecipeContext, app: DeployingApp, target: ReleaseTarget): void {
  const { settings } = target;
  if (!/^[A-Za-z0-9._-]+$/.test(target.id)) {
    throw new Error(`app ${app.name}: deployment id "${target.id}" cannot name a release folder`);
  }
  const label = `${app.name} release ${target.id}`;
  const asUser = settings.user === undefined ? {} : { user: settings.user };
  // existence only: the layers' recipes may manage these folders' modes and owners
  r.directory(target.dir, { recursive: true });
  r.directory(`${target.dir}/releases`);
  r.directory(target.shared);
  const shared = settings.shared;
  const checks = shared.files.map((file) =>
    r.execute(`${label}: shared file ${file}`, {
      // fails with what to do; passed as env so it is not repeated in the command's display
      command: 'echo "$GALLEY_MISSING" >&2; exit 1',
      env: {
        GALLEY_MISSING: `app ${app.name}: the shared file ${file} is missing: create ${sharedPath(target, file)} (a setup or configure recipe, or by hand) before deploying`,
      },
      creates: sharedPath(target, file),
      requires: `directory[${target.shared}]`,
    }),
  );
  const dirs = shared.dirs.map((dir) =>
    r.directory(sharedPath(target, dir), {
      recursive: true,
      ...(settings.user === undefined ? {} : { owner: settings.user }),
      requires: `directory[${target.shared}]`,
    }),
  );
  const unpacked = r.execute(`${label}: unpack`, {
    command: [
      "sh",
      "-c",
      unpack,
      "sh",
      app.archive,
      target.path,
      settings.user ?? "",
      ...shared.files,
      ...shared.dirs,
    ],
    creates: target.path,
    requires: [`directory[${target.dir}/releases]`, ...checks, ...dirs],
  });
  const links = [...shared.files, ...shared.dirs].map((item) =>
    r.link(linkedPath(target, item), { to: sharedPath(target, item), requires: unpacked }),
  );
  // what runs can tell its revision (Capistrano's REVISION file)
  const revision = r.file(`${target.path}/REVISION`, {
    content: `${app.revision}\n`,
    mode: 0o644,
    requires: unpacked,
  });
  const env = {
    ...app.environment,
    GALLEY_APP: app.name,
    GALLEY_RELEASE: target.path,
    GALLEY_DEPLOYMENT: target.id,
    GALLEY_REVISION: app.revision,
  };
  let last = [unpacked, revision, ...links];
  const step = (name: string, command: string) => {
    const marker = `${target.path}/.galley-${name}`;
    last = [
      r.execute(`${label}: ${name}`, {
        command: ["sh", "-c", once, "sh", command, marker],
        cwd: target.path,
        env,
        ...asUser,
        creates: marker,
        requires: last,
      }),
    ];
  };
  if (settings.build !== undefined) step("built", settings.build);
  for (const hook of ["before_migrate", "before_symlink"] as const) {
    const command = settings.hooks[hook];
    // recipe hooks are runs of their own: the rollout controller runs them
    if (typeof command === "string") step(hook, command);
  }
  if (target.service) service(r, app, target, target.service);
}

/**
 * The systemd unit Galley manages: its environment file (0600: it holds the app's secrets) and
 * unit, daemon-reload when the unit changed, enabled. Written while preparing, so a host that
 * cannot take them fails before any switch; the switch restarts the unit.
 */
function service(r: RecipeContext, app: DeployingApp, target: ReleaseTarget, unit: ServiceTarget): void {
  const envFile = r.file(unit.envFile, {
    content: envFileText(unit.environment),
    mode: 0o600,
    sensitive: true,
    requires: `directory[${target.dir}]`,
  });
  const file = r.file(unit.unit, { content: unitText(unit, target.current, app.name), mode: 0o644 });
  const reload = r.execute(`${app.name} service: daemon-reload`, {
    command: [unit.systemctl, "daemon-reload"],
    action: "nothing",
    subscribes: { action: "run", resource: file, timing: "immediate" },
  });
  r.execute(`${app.name} service: enable`, {
    command: [unit.systemctl, "enable", `${unit.name}.service`],
    notIf: [unit.systemctl, "is-enabled", "--quiet", `${unit.name}.service`],
    requires: [envFile, file, reload],
  });
}
