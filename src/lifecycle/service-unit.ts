import type { AppService } from "../stacks/schema.ts";
import type { ServiceTarget } from "../stacks/state.ts";

// The systemd unit Galley manages for an app (`release.service`), and the environment file it
// reads: pure text, so a change of either is a change of a file resource, and nothing else.

/**
 * Where app `name`'s unit and environment file go, from its release settings (dir: <deploy_to>/<app>).
 *
 * @example serviceTarget("hello", "/srv/hello", { exec: "node server.js", environment: {} }, "app", { PORT: "3000" }).unit // "/etc/systemd/system/hello.service"
 */
export function serviceTarget(
  name: string,
  dir: string,
  service: AppService,
  releaseUser: string | undefined,
  appEnvironment: Record<string, string>,
): ServiceTarget {
  return {
    name,
    unit: `/etc/systemd/system/${name}.service`,
    envFile: `${dir}/${name}.env`,
    exec: service.exec,
    user: service.user ?? releaseUser,
    environment: { ...appEnvironment, ...service.environment },
    systemctl: "systemctl",
  };
}

/**
 * The unit file: runs `exec` with sh in `current` (resolved at each start, so a restart after the
 * switch runs the new release), as `user`, with the environment file, restarted when it fails.
 */
export function unitText(target: ServiceTarget, current: string, app: string): string {
  return [
    "# Managed by Galley (release.service of the stack file): changes here are overwritten",
    "[Unit]",
    `Description=${app} (Galley app)`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    ...(target.user === undefined ? [] : [`User=${target.user}`]),
    `WorkingDirectory=${current}`,
    `EnvironmentFile=${target.envFile}`,
    `ExecStart=/bin/sh -c ${unitQuote(`exec ${target.exec}`)}`,
    "Restart=on-failure",
    "RestartSec=1",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
    "",
  ].join("\n");
}

/** The environment file systemd reads (EnvironmentFile=): one KEY="value" a line, escaped. */
export function envFileText(environment: Record<string, string>): string {
  return Object.entries(environment)
    .map(([key, value]) => `${key}="${value.replace(/["\\`$]/g, "\\$&")}"\n`)
    .join("");
}

// one argument of ExecStart: double-quoted, with systemd's specifiers (%) and variables ($) literal
function unitQuote(text: string): string {
  return `"${text.replace(/[\\"]/g, "\\$&").replaceAll("%", "%%").replaceAll("$", "$$$$")}"`;
}
