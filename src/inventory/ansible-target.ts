import { GalleyError } from "../core/errors.ts";
import type { SshTarget } from "../hosts/target.ts";
import { buildTarget, type ConnectionSettings, parseJump } from "./connection.ts";
import { type Origin, where } from "./model.ts";
import { shlexSplit } from "./shlex.ts";

/** Ansible variables Galley refuses, with what to do instead. */
const refused: Record<string, string> = {
  ansible_password:
    "Galley logs in with keys only: set ansible_ssh_private_key_file, or load the key in ssh-agent",
  ansible_ssh_pass:
    "Galley logs in with keys only: set ansible_ssh_private_key_file, or load the key in ssh-agent",
  ansible_ssh_password:
    "Galley logs in with keys only: set ansible_ssh_private_key_file, or load the key in ssh-agent",
  ansible_become_password:
    "Galley runs sudo -n: allow the user sudo without a password (NOPASSWD in sudoers)",
  ansible_become_pass: "Galley runs sudo -n: allow the user sudo without a password (NOPASSWD in sudoers)",
};

/**
 * The SSH target of an Ansible host from its merged variables: ansible_host, ansible_port,
 * ansible_user, ansible_ssh_private_key_file, ansible_become(_user), ansible_host_key_checking,
 * ansible_ssh_timeout, ansible_ssh_retries, and ProxyJump / StrictHostKeyChecking /
 * UserKnownHostsFile / ConnectTimeout in ansible_ssh_args, _common_args and _extra_args.
 */
export function ansibleTarget(
  name: string,
  vars: Record<string, unknown>,
  origins: Record<string, Origin>,
  baseDir: string,
): SshTarget {
  const at = (key: string) => `${where(origins[key] ?? { file: "?" })}: host ${name}: ${key}`;
  const fail = (key: string, message: string, hint: string): never => {
    throw new GalleyError("INVENTORY_INVALID", `${at(key)} ${message}`, { hint });
  };
  for (const [key, hint] of Object.entries(refused)) if (key in vars) fail(key, "is not supported", hint);
  // of two names for one setting, Ansible takes the last one it lists
  const pick = (...keys: string[]) => keys.findLast((key) => vars[key] !== undefined && vars[key] !== null);
  const get = (...keys: string[]) => {
    const key = pick(...keys);
    const value = key === undefined ? undefined : vars[key];
    if (typeof value === "string" && /\{\{|\{%/.test(value)) {
      fail(key!, "is a Jinja template, which Galley does not evaluate", "write the value itself");
    }
    return { key: key ?? keys[0]!, value };
  };
  const text = (...keys: string[]) => {
    const { key, value } = get(...keys);
    if (value === undefined || typeof value === "string") return value;
    if (typeof value === "number") return String(value);
    return fail(key, `must be text, not ${JSON.stringify(value)}`, "quote the value");
  };
  const integer = (min: number, max: number, ...keys: string[]) => {
    const { key, value } = get(...keys);
    if (value === undefined) return undefined;
    const number = typeof value === "string" && /^\s*\d+\s*$/.test(value) ? Number(value) : value;
    if (typeof number === "number" && Number.isInteger(number) && number >= min && number <= max)
      return number;
    return fail(
      key,
      `must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`,
      "fix the value",
    );
  };
  const boolean = (...keys: string[]) => {
    const { key, value } = get(...keys);
    if (value === undefined) return undefined;
    const word = typeof value === "string" ? value.trim().toLowerCase() : value;
    if (["y", "yes", "on", "1", "true", "t", 1, true].includes(word as never)) return true;
    if (["n", "no", "off", "0", "false", "f", 0, false].includes(word as never)) return false;
    return fail(key, `must be true or false, not ${JSON.stringify(value)}`, "write true or false");
  };

  const connection = text("ansible_connection");
  if (connection !== undefined && !["ssh", "smart", "paramiko"].includes(connection)) {
    fail(
      "ansible_connection",
      `is ${connection}: Galley reaches hosts over SSH only`,
      "use ssh, or galley apply on this machine",
    );
  }
  const method = text("ansible_become_method");
  if (method !== undefined && method !== "sudo") {
    fail("ansible_become_method", `is ${method}: Galley becomes another user with sudo only`, "use sudo");
  }
  const settings: ConnectionSettings = {
    address: text("ansible_host", "ansible_ssh_host"),
    port: integer(1, 65535, "ansible_port", "ansible_ssh_port"),
    user: text("ansible_user", "ansible_ssh_user"),
    key: text("ansible_private_key_file", "ansible_ssh_private_key_file"),
    become: boolean("ansible_become"),
    become_user: text("ansible_become_user"),
    timeout: integer(0, 86_400, "ansible_timeout", "ansible_ssh_timeout"),
    retries: integer(0, 100, "ansible_ssh_retries"),
    state_dir: text("galley_state_dir"),
  };
  for (const key of ["ansible_ssh_args", "ansible_ssh_common_args", "ansible_ssh_extra_args"]) {
    const args = text(key);
    if (args !== undefined) applySshArgs(settings, args, at(key));
  }
  const checking = boolean("ansible_host_key_checking", "ansible_ssh_host_key_checking");
  if (checking !== undefined) settings.host_key_checking = checking ? "strict" : "accept-new";
  return buildTarget(name, settings, baseDir, at("ansible_ssh_common_args"));
}

/** Reads the ssh options Galley understands from an ssh command line; it ignores the others. */
function applySshArgs(settings: ConnectionSettings, args: string, what: string): void {
  let words: string[];
  try {
    words = shlexSplit(args);
  } catch (error) {
    throw new GalleyError("INVENTORY_INVALID", `${what}: ${(error as Error).message}`, {
      hint: "close the quotes",
    });
  }
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    let option: string | undefined;
    if (word === "-o" || word === "-J") option = `${word === "-J" ? "proxyjump=" : ""}${words[++i] ?? ""}`;
    else if (word.startsWith("-o")) option = word.slice(2);
    else if (word.startsWith("-J")) option = `proxyjump=${word.slice(2)}`;
    if (option === undefined) continue;
    const m = /^\s*(\w+)\s*(?:=\s*|\s+)(.*)$/.exec(option);
    const [name, value] = [m?.[1]?.toLowerCase(), m?.[2]?.trim() ?? ""];
    if (name === "proxyjump" && value.toLowerCase() !== "none") settings.jump = parseJump(value, what);
    else if (name === "proxycommand" && value.toLowerCase() !== "none") {
      throw new GalleyError("INVENTORY_INVALID", `${what}: ProxyCommand is not supported`, {
        hint: "connect through a jump host with -o ProxyJump=user@host:port instead",
      });
    } else if (name === "stricthostkeychecking") {
      settings.host_key_checking = ["yes", "ask"].includes(value.toLowerCase()) ? "strict" : "accept-new";
    } else if (name === "userknownhostsfile") settings.known_hosts = value.split(/\s+/)[0];
    else if (name === "connecttimeout" && /^\d+$/.test(value)) settings.timeout = Number(value);
  }
}
