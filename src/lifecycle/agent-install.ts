import * as fs from "node:fs/promises";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import { currentSecrets } from "../core/secrets.ts";
import type { SshTarget } from "../hosts/target.ts";
import { type AgentPackage, agentPackage } from "./agent-package.ts";

// Galley's own setup of an agent on a host it reaches over SSH: Node.js and Galley (the agent
// package, shipped only when the host lacks that version), /usr/local/bin/galley, the enrollment,
// and the agent as a service (systemd where PID 1 is systemd, else a sysv init script).

/** Where versions of Galley live on hosts: /opt/galley/<sha>, and `current` the one in use. */
export const installRoot = "/opt/galley";

/** The service's name (systemd unit galley-agent.service, or /etc/init.d/galley-agent). */
export const agentService = "galley-agent";

/** The agent's config, written by `galley agent enroll` (src/agent/config.ts). */
const agentConfig = "/etc/galley/agent.json";

/** What installAgent needs besides the host. */
export interface InstallAgentOptions {
  /**
   * the server's URL (https://HOST:PORT) and a one-time enrollment token: enrolls the host; without
   * them it is not (again) enrolled. A function is asked only when the host is not enrolled yet as
   * `agent` with that server (its /etc/galley/agent.json says otherwise): a start of a stopped
   * instance does not enroll it again.
   */
  serverUrl?: string | undefined;
  token?: string | (() => Promise<string>) | undefined;
  /** the instance the host's agent speaks for (what a token function's enrollment is checked against) */
  agent?: { stack: string; instance: string } | undefined;
  /** where the agent package is built and kept: the kitchen's .galley/cache/agent */
  cacheDir: string;
  log?: ((line: string) => void) | undefined;
  signal?: AbortSignal | undefined;
}

/** What installAgent did. */
export interface AgentInstall {
  /** the package installed: /opt/galley/<sha> */
  sha: string;
  /** bytes sent to the host: the package's size, or 0 when the host had it */
  shipped: number;
  service: "systemd" | "sysv";
  enrolled: boolean;
  /** the service runs (it is not started on a host never enrolled) */
  started: boolean;
  /** the service was (re)started by this install: an agent connected before it is going away */
  restarted: boolean;
}

/**
 * Sets up the agent on a host over SSH, idempotently: ships the agent package (Node.js 24 and
 * Galley) to /opt/galley/<sha> unless it is there, links /opt/galley/current, writes
 * /usr/local/bin/galley, runs `galley agent enroll --server URL --token T` when given them, and
 * installs and (re)starts the galley-agent service.
 *
 * @example await installAgent(target, { serverUrl: "https://10.0.0.1:8443", token, cacheDir: ".galley/cache/agent" }) // { sha: "9c…", shipped: 48213344, service: "systemd", … }
 */
export async function installAgent(target: SshTarget, options: InstallAgentOptions): Promise<AgentInstall> {
  if ((options.serverUrl === undefined) !== (options.token === undefined)) {
    throw new GalleyError("USAGE", "enrolling an agent needs both the server's URL and an enrollment token", {
      hint: "galley agent install --stack S INSTANCE --server https://HOST:PORT",
    });
  }
  const log = options.log ?? (() => {});
  const pkg = await agentPackage(options.cacheDir);
  const { transports } = await import("../hosts/transports.ts");
  const host = await transports.ssh.connect(target, { signal: options.signal });
  try {
    const shipped = await ship(host, pkg, target.name, log);
    let changed = shipped > 0;
    changed = (await link(host, pkg.sha)) || changed;
    changed = (await writeIfChanged(host, "/usr/local/bin/galley", wrapperScript, 0o755)) || changed;
    const version = await run(host, ["/usr/local/bin/galley", "--version"], "galley --version");
    log(
      `${target.name}: ${version.trim()} on Node.js ${(await run(host, [`${installRoot}/current/node`, "--version"], "node --version")).trim()}`,
    );
    let enrolled = false;
    const token =
      typeof options.token === "function"
        ? (await enrolledAs(host, options))
          ? undefined
          : await options.token()
        : options.token;
    if (options.serverUrl && token) {
      // the token enrolls once: no log, report or error may show it
      currentSecrets().register([token]);
      await run(
        host,
        ["/usr/local/bin/galley", "agent", "enroll", "--server", options.serverUrl, "--token", token],
        `galley agent enroll --server ${options.serverUrl}`,
      );
      log(`${target.name}: enrolled with ${options.serverUrl}`);
      enrolled = true;
      changed = true;
    } else enrolled = (await host.stat(agentConfig)) !== undefined;
    const facts = await host.facts();
    const service = facts.init === "systemd" ? "systemd" : "sysv";
    changed = (await (service === "systemd" ? installUnit(host) : installInitScript(host))) || changed;
    let started = false;
    if (enrolled) {
      await startService(host, service, changed);
      started = true;
      log(`${target.name}: ${agentService} ${changed ? "(re)started" : "running"} (${service})`);
    } else log(`${target.name}: ${agentService} installed, not started: not enrolled`);
    return { sha: pkg.sha, shipped, service, enrolled, started, restarted: started && changed };
  } finally {
    await host.close();
  }
}

// whether the host's agent is enrolled as options.agent with options.serverUrl already
async function enrolledAs(host: Host, options: InstallAgentOptions): Promise<boolean> {
  const bytes = await host.readFile(agentConfig);
  if (bytes === undefined || !options.agent) return false;
  try {
    const config = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
    return (
      config.server === options.serverUrl &&
      config.stack === options.agent.stack &&
      config.instance === options.agent.instance
    );
  } catch {
    return false;
  }
}

// the package, unpacked beside its final folder and renamed into it: a folder there is complete
async function ship(
  host: Host,
  pkg: AgentPackage,
  name: string,
  log: (line: string) => void,
): Promise<number> {
  const dir = `${installRoot}/${pkg.sha}`;
  if ((await host.stat(`${dir}/node`)) !== undefined) return 0;
  log(`${name}: shipping Galley and Node.js (${Math.round(pkg.bytes / 1e6)} MB) to ${dir}`);
  const incoming = `${installRoot}/.incoming-${pkg.sha}`;
  const script = [
    "set -e",
    `rm -rf '${incoming}'`,
    `mkdir -p '${incoming}'`,
    `tar -xzf - -C '${incoming}' --no-same-owner`,
    `rm -rf '${dir}'`,
    `mv '${incoming}' '${dir}'`,
  ].join("\n");
  await run(host, ["sh", "-c", script], `unpacking the agent package in ${dir}`, await fs.readFile(pkg.file));
  return pkg.bytes;
}

// /opt/galley/current → <sha>, replaced atomically; true when it changed
async function link(host: Host, sha: string): Promise<boolean> {
  const current = await host.stat(`${installRoot}/current`);
  if (current?.target === sha) return false;
  const script = `set -e\nln -sfn '${sha}' '${installRoot}/.current'\nmv -T '${installRoot}/.current' '${installRoot}/current'`;
  await run(host, ["sh", "-c", script], `linking ${installRoot}/current`);
  return true;
}

/** /usr/local/bin/galley: Galley on the Node.js it came with. */
export const wrapperScript = `#!/bin/sh
# written by galley agent install: Galley on the Node.js shipped with it
exec ${installRoot}/current/node ${installRoot}/current/bin/galley.js "$@"
`;

/** The systemd unit: the agent, restarted whatever way it ends. */
export const unitText = `# written by galley agent install
[Unit]
Description=Galley agent
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart=/usr/local/bin/galley agent run
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
`;

/** The sysv init script: a loop restarts the agent whatever way it ends (systemd's Restart=always). */
export const initScript = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          ${agentService}
# Required-Start:    $network $remote_fs
# Required-Stop:     $network $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Galley agent
### END INIT INFO
# written by galley agent install
PIDFILE=/run/${agentService}.pid
LOG=/var/log/${agentService}.log
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
  start)
    running && exit 0
    setsid sh -c 'while :; do /usr/local/bin/galley agent run; sleep 5; done' >>"$LOG" 2>&1 </dev/null &
    echo $! >"$PIDFILE"
    ;;
  stop)
    if running; then kill -TERM -- "-$(cat "$PIDFILE")" 2>/dev/null; fi
    rm -f "$PIDFILE"
    ;;
  restart|force-reload)
    "$0" stop
    "$0" start
    ;;
  status)
    if running; then echo "${agentService} is running"; exit 0; fi
    echo "${agentService} is not running"
    exit 3
    ;;
  *)
    echo "usage: $0 start|stop|restart|status" >&2
    exit 2
    ;;
esac
`;

async function installUnit(host: Host): Promise<boolean> {
  const changed = await writeIfChanged(host, `/etc/systemd/system/${agentService}.service`, unitText, 0o644);
  if (changed) await run(host, ["systemctl", "daemon-reload"], "systemctl daemon-reload");
  await run(host, ["systemctl", "enable", `${agentService}.service`], `systemctl enable ${agentService}`);
  return changed;
}

async function installInitScript(host: Host): Promise<boolean> {
  const changed = await writeIfChanged(host, `/etc/init.d/${agentService}`, initScript, 0o755);
  // the runlevel links update-rc.d would make: start last in 2–5, stop first in 0, 1 and 6
  const links = [
    ...[2, 3, 4, 5].map((level) => `ln -sfn ../init.d/${agentService} /etc/rc${level}.d/S99${agentService}`),
    ...[0, 1, 6].map((level) => `ln -sfn ../init.d/${agentService} /etc/rc${level}.d/K01${agentService}`),
  ];
  await run(
    host,
    [
      "sh",
      "-c",
      `set -e\nmkdir -p /etc/rc0.d /etc/rc1.d /etc/rc2.d /etc/rc3.d /etc/rc4.d /etc/rc5.d /etc/rc6.d\n${links.join("\n")}`,
    ],
    "linking the runlevels",
  );
  return changed;
}

async function startService(host: Host, service: "systemd" | "sysv", restart: boolean): Promise<void> {
  const action = restart ? "restart" : "start";
  const argv =
    service === "systemd"
      ? ["systemctl", action, `${agentService}.service`]
      : [`/etc/init.d/${agentService}`, action];
  await run(host, argv, argv.join(" "));
}

async function writeIfChanged(host: Host, file: string, text: string, mode: number): Promise<boolean> {
  const now = await host.readFile(file);
  const stat = now === undefined ? undefined : await host.stat(file);
  if (now !== undefined && Buffer.from(now).toString("utf8") === text && stat?.mode === mode) return false;
  await run(host, ["mkdir", "-p", path.posix.dirname(file)], `mkdir ${path.posix.dirname(file)}`);
  await host.writeFile(file, text, { mode });
  return true;
}

// a command that must succeed; its failure names `what` and the host's words (scrubbed by the caller's registry)
async function run(host: Host, argv: string[], what: string, input?: Uint8Array): Promise<string> {
  const result = await host.exec(argv, input === undefined ? {} : { input });
  if (result.exitCode === 0) return result.stdout;
  const said = currentSecrets().scrub(`${result.stderr}${result.stdout}`.trim().slice(-2000));
  throw new GalleyError(
    "EXEC_FAILED",
    `${host.name}: ${what} exited ${result.exitCode}${said ? `: ${said}` : ""}`,
    {
      hint: "run it on the host to see why (galley hosts exec NAME -- …, or ssh)",
    },
  );
}
