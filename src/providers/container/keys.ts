import { existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { runOk } from "./run.ts";

/** Generates an ed25519 key pair at `file` (+ .pub) unless it exists; the private key is 0600. */
export async function ensureKeyPair(file: string, comment: string): Promise<void> {
  if (existsSync(file) && existsSync(`${file}.pub`)) return;
  await fs.rm(file, { force: true });
  await fs.rm(`${file}.pub`, { force: true });
  // generated beside and renamed: an interrupted run never leaves half a key
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  await fs.rm(temp, { force: true });
  await fs.rm(`${temp}.pub`, { force: true });
  await runOk(
    ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", temp],
    "generating an ssh key",
  );
  await fs.chmod(temp, 0o600);
  await fs.rename(`${temp}.pub`, `${file}.pub`);
  await fs.rename(temp, file);
}

/** A public key file's `type base64` part (without the comment). */
export async function publicKey(file: string): Promise<string> {
  const [type, key] = (await fs.readFile(`${file}.pub`, "utf8")).trim().split(/\s+/);
  return `${type} ${key}`;
}

/** known_hosts lines: each host's address and name with its host key, for strict checking. */
export function knownHostsText(hosts: { name: string; address: string; hostKey: string }[]): string {
  const lines = hosts.map((host) => `${host.address},${host.name} ${host.hostKey}`);
  return lines.length > 0 ? `${lines.join("\n")}\n` : "";
}

/** Installs `authorizedKey` for a user inside a host's root, owned by the user. */
export async function authorize(
  root: string,
  home: string,
  uid: number,
  gid: number,
  authorizedKey: string,
): Promise<void> {
  const dir = path.join(root, home, ".ssh");
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  await fs.chmod(dir, 0o700);
  await fs.chown(dir, uid, gid);
  const file = path.join(dir, "authorized_keys");
  await fs.writeFile(file, `${authorizedKey} galley-hosts\n`, { mode: 0o600 });
  await fs.chmod(file, 0o600);
  await fs.chown(file, uid, gid);
}

/** A user's uid, gid and home in a host's /etc/passwd. */
export async function passwdEntry(
  root: string,
  user: string,
): Promise<{ uid: number; gid: number; home: string }> {
  const passwd = await fs.readFile(path.join(root, "etc", "passwd"), "utf8");
  for (const line of passwd.split("\n")) {
    const fields = line.split(":");
    if (fields[0] === user)
      return { uid: Number(fields[2]), gid: Number(fields[3]), home: fields[5] ?? `/home/${user}` };
  }
  throw new Error(`no user ${user} in the image`);
}
