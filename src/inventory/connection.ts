import * as os from "node:os";
import * as path from "node:path";
import { GalleyError } from "../core/errors.ts";
import { type SshTarget, targetDefaults } from "../hosts/target.ts";

/** A jump host written as a mapping. */
export interface JumpSettings {
  address: string;
  port?: number | undefined;
  user?: string | undefined;
  key?: string | undefined;
}

/** Connection settings as an inventory writes them (Galley's keys; Ansible's variables map onto them). */
export interface ConnectionSettings {
  address?: string | undefined;
  port?: number | undefined;
  user?: string | undefined;
  key?: string | undefined;
  known_hosts?: string | undefined;
  host_key_checking?: "strict" | "accept-new" | undefined;
  become?: boolean | undefined;
  become_user?: string | undefined;
  jump?: string | JumpSettings | undefined;
  /** connect timeout, seconds */
  timeout?: number | undefined;
  retries?: number | undefined;
  /** where Galley keeps its state on the host (absolute); default /var/lib/galley as root, else ~/.local/state/galley */
  state_dir?: string | undefined;
}

/** The user ssh would log in as: the local user's name. */
export function localUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? "root";
  }
}

/** `~` is the home folder; a relative path is relative to `baseDir` (the inventory's folder). */
export function resolvePath(file: string, baseDir: string): string {
  if (file === "~" || file.startsWith("~/")) return path.join(os.homedir(), file.slice(1));
  return path.resolve(baseDir, file);
}

/** The SSH target of host `name` from its merged settings; `where` names the inventory entry in errors. */
export function buildTarget(name: string, s: ConnectionSettings, baseDir: string, where: string): SshTarget {
  const keyFile = s.key === undefined ? undefined : resolvePath(s.key, baseDir);
  const knownHostsFile = resolvePath(s.known_hosts ?? "~/.ssh/known_hosts", baseDir);
  const hostKeyChecking = s.host_key_checking ?? targetDefaults.hostKeyChecking;
  const target: SshTarget = {
    name,
    address: s.address ?? name,
    port: s.port ?? targetDefaults.port,
    user: s.user ?? localUser(),
    become: s.become ?? false,
    becomeUser: s.become_user ?? targetDefaults.becomeUser,
    knownHostsFile,
    hostKeyChecking,
    connectTimeoutMs:
      s.timeout === undefined ? targetDefaults.connectTimeoutMs : Math.round(s.timeout * 1000),
    retries: s.retries ?? targetDefaults.retries,
  };
  if (keyFile !== undefined) target.keyFile = keyFile;
  if (s.state_dir !== undefined) {
    if (!s.state_dir.startsWith("/") || s.state_dir.includes("\0")) {
      throw new GalleyError(
        "INVENTORY_INVALID",
        `${where}: state_dir of ${name} must be an absolute path on the host`,
        {
          hint: "write it as /var/lib/galley-blue, for example",
        },
      );
    }
    target.stateDir = s.state_dir;
  }
  if (s.jump !== undefined) {
    const jump = typeof s.jump === "string" ? parseJump(s.jump, `${where}: jump of ${name}`) : s.jump;
    // the jump host is checked like the host, and logs in with the same key unless it has its own
    const jumpKey = jump.key === undefined ? keyFile : resolvePath(jump.key, baseDir);
    target.jump = {
      address: jump.address,
      port: jump.port ?? targetDefaults.port,
      user: jump.user ?? localUser(),
      knownHostsFile,
      hostKeyChecking,
      ...(jumpKey === undefined ? {} : { keyFile: jumpKey }),
    };
  }
  return target;
}

/**
 * Reads a jump host written as ssh's ProxyJump: `[user@]host[:port]`, `[user@][v6addr]:port` or
 * `ssh://[user@]host[:port]`. One jump only.
 *
 * @example parseJump("admin@bastion:2222", "…") // { user: "admin", address: "bastion", port: 2222 }
 */
export function parseJump(spec: string, what: string): JumpSettings {
  const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s,[\]]+)(?::(\d+))?$/.exec(spec.trim());
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new GalleyError("INVENTORY_INVALID", `${what}: cannot read the jump host ${JSON.stringify(spec)}`, {
      hint: spec.includes(",")
        ? "Galley connects through one jump host only"
        : "write it as user@host:port (user and port optional)",
    });
  }
  return { address: m[2]!.replace(/^\[(.*)\]$/, "$1"), port, user: m[1] };
}
