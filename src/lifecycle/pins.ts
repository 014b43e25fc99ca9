import type { App } from "../stacks/schema.ts";
import type { DeploymentRecord } from "../store/store.ts";
import { type PreparedApp, prepareApps } from "./apps.ts";
import type { StackContext } from "./context.ts";
import { releaseTarget } from "./releases.ts";

// The stack pins what its fleet runs: for an app whose releases Galley makes, the newest succeeded
// deployment's commit and release. An instance that starts later, or `galley run deploy`, gets
// exactly that, never whatever the branch points at now.

/** The release folder a deployment made (or, for a rollback, reused): its id as text. */
export function releaseOf(deployment: DeploymentRecord): string {
  const release = (deployment.params as { release?: unknown }).release;
  return typeof release === "string" && release !== "" ? release : String(deployment.id);
}

/**
 * The apps ready to deploy on instances that join: apps without release settings at their
 * source's revision (as before); apps with them at the pinned deployment, or left out (with a
 * line saying so) when none succeeded yet.
 */
export async function pinnedApps(
  context: StackContext,
  apps: readonly App[],
  log: (line: string) => void,
): Promise<PreparedApp[]> {
  const out: PreparedApp[] = [];
  for (const app of apps) {
    if (!app.release) {
      out.push(...(await prepareApps(context, [app])));
      continue;
    }
    const pin = await context.store.deployedRevision(context.stack.name, app.name);
    if (!pin) {
      log(`app ${app.name}: not deployed yet (galley deploy ${app.name} --stack ${context.file})`);
      continue;
    }
    const source = app.source.type === "git" ? { ...app.source, revision: pin.revision } : app.source;
    const [prepared] = await prepareApps(context, [{ ...app, source }]);
    out.push({ ...prepared!, release: releaseTarget(app, Number(releaseOf(pin)))! });
  }
  return out;
}
