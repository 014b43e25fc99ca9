import type { RecipeContext } from "../../core/recipe.ts";
import type { ResourceRef } from "../../core/common.ts";
import type { DeployingApp, ReleaseTarget } from "../../stacks/state.ts";
import { revisionsLog } from "../releases.ts";

// The release folders to remove: beyond the `keep` ($2) most recently used, never the one
// `current` points at nor the one being deployed ($3). Most recently used: by their last switch in
// revisions.log, then those never switched to (a failed deployment's), newest first; so a release
// just rolled back to, or the one running before a deploy, is not the first to go. Prints one id a
// line; prints nothing when in state.
const stale = [
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template
  'stale() { cur=$(readlink "$1/current" 2>/dev/null || true); cur=${cur##*/}',
  `{ tac "$1/revisions.log" 2>/dev/null | awk '{ print $2 }'; ls -1 "$1/releases" | sort -rn; } |`,
  `grep -E '^[0-9]+$' | awk '!seen[$0]++' | while read -r id; do [ -d "$1/releases/$id" ] && echo "$id"; done |`,
  'tail -n +$(($2 + 1)) | while read -r id; do [ "$id" = "$cur" ] || [ "$id" = "$3" ] || echo "$id"; done; }',
].join("\n");

/**
 * Galley's switch phase of a deployment, for each deployed app with a `release` section:
 * `current` replaced atomically by a link to releases/<id>; only when it changed, a line in
 * revisions.log, then the before_restart hook, `restart` and the after_restart hook (those that
 * are commands), each after the one before it succeeded. Then old releases beyond `keep` go.
 * Switching to the release already current changes nothing.
 */
export default function releaseSwitch(r: RecipeContext): void {
  for (const app of r.stack.deploying) {
    if (app.release) switchTo(r, app, app.release);
  }
}

function switchTo(r: RecipeContext, app: DeployingApp, target: ReleaseTarget): void {
  const { settings } = target;
  const label = `${app.name} release ${target.id}`;
  const there = r.execute(`${label}: prepared`, {
    // fails with what to do; passed as env so it is not repeated in the command's display
    command: 'echo "$GALLEY_MISSING" >&2; exit 1',
    env: {
      GALLEY_MISSING: `app ${app.name}: release ${target.id} is not on this host (${target.path}): prepare it before switching`,
    },
    creates: target.path,
  });
  const current = r.link(target.current, { to: target.path, requires: there });
  const env = {
    ...app.environment,
    GALLEY_APP: app.name,
    GALLEY_RELEASE: target.path,
    GALLEY_DEPLOYMENT: target.id,
    GALLEY_REVISION: app.revision,
  };
  // each runs only when notified: when `current` changed, right after the step before it succeeded
  let previous: ResourceRef = current;
  const step = (name: string, command: string | undefined, props: Record<string, unknown>) => {
    if (command === undefined) return;
    previous = r.execute(`${label}: ${name}`, {
      command,
      ...props,
      action: "nothing",
      subscribes: { action: "run", resource: previous, timing: "immediate" },
    });
  };
  step(
    "revisions.log",
    'printf "%s %s %s\\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$GALLEY_DEPLOYMENT" "$GALLEY_REVISION" >> "$GALLEY_LOG"',
    {
      env: { GALLEY_DEPLOYMENT: target.id, GALLEY_REVISION: app.revision, GALLEY_LOG: revisionsLog(target) },
    },
  );
  const inRelease = {
    cwd: target.path,
    env,
    ...(settings.user === undefined ? {} : { user: settings.user }),
  };
  const hook = (name: "before_restart" | "after_restart") => {
    const value = settings.hooks[name];
    // recipe hooks are runs of their own: the rollout controller runs them
    step(name, typeof value === "string" ? value : undefined, inRelease);
  };
  hook("before_restart");
  // a unit Galley manages restarts with systemctl unless the stack file says how
  const restart =
    settings.restart ??
    (target.service ? `${target.service.systemctl} restart ${target.service.name}.service` : undefined);
  step("restart", restart, { cwd: target.path, env });
  hook("after_restart");
  r.execute(`${label}: remove old releases`, {
    command: [
      "sh",
      "-c",
      `${stale}\nstale "$@" | while read -r id; do rm -rf -- "$1/releases/$id"; done`,
      "sh",
      target.dir,
      String(settings.keep),
      target.id,
    ],
    onlyIf: [
      "sh",
      "-c",
      `${stale}\ntest -n "$(stale "$@")"`,
      "sh",
      target.dir,
      String(settings.keep),
      target.id,
    ],
    requires: current,
  });
}
