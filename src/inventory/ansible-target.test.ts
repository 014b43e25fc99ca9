import assert from "node:assert/strict";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { ansibleTarget } from "./ansible-target.ts";
import { localUser } from "./connection.ts";

const origins = new Proxy({}, { get: (_, key) => ({ file: "hosts.ini", line: String(key).length }) });

function target(vars: Record<string, unknown>) {
  return ansibleTarget("web1", vars, origins, "/srv/inventory");
}

function fails(vars: Record<string, unknown>, message: RegExp, hint: RegExp) {
  assert.throws(
    () => target(vars),
    (e: GalleyError) => e.code === "INVENTORY_INVALID" && message.test(e.message) && hint.test(e.hint ?? ""),
    message.source,
  );
}

test("Ansible's connection variables map onto the SSH target", () => {
  assert.deepEqual(
    target({
      ansible_host: "10.147.0.2",
      ansible_port: 2222,
      ansible_user: "deploy",
      ansible_ssh_private_key_file: "keys/deploy",
      ansible_become: "yes",
      ansible_become_user: "app",
      ansible_ssh_timeout: "7",
      ansible_ssh_retries: 0,
      ansible_host_key_checking: false,
      ansible_ssh_common_args: "-o ProxyJump=admin@bastion:2200 -o ServerAliveInterval=5",
    }),
    {
      name: "web1",
      address: "10.147.0.2",
      port: 2222,
      user: "deploy",
      keyFile: "/srv/inventory/keys/deploy",
      become: true,
      becomeUser: "app",
      knownHostsFile: path.join(os.homedir(), ".ssh/known_hosts"),
      hostKeyChecking: "accept-new",
      connectTimeoutMs: 7000,
      retries: 0,
      jump: {
        address: "bastion",
        port: 2200,
        user: "admin",
        keyFile: "/srv/inventory/keys/deploy",
        knownHostsFile: path.join(os.homedir(), ".ssh/known_hosts"),
        hostKeyChecking: "accept-new",
      },
    },
  );
});

test("without variables: the name, port 22, the local user, strict host keys", () => {
  const t = target({ unrelated: 1 });
  assert.equal(t.address, "web1");
  assert.equal(t.port, 22);
  assert.equal(t.user, localUser());
  assert.equal(t.become, false);
  assert.equal(t.hostKeyChecking, "strict");
  assert.equal(t.keyFile, undefined);
  assert.equal(t.jump, undefined);
});

test("of two names for one setting the ssh_ one wins, as in Ansible", () => {
  const t = target({ ansible_host: "a", ansible_ssh_host: "b", ansible_user: "u1", ansible_ssh_user: "u2" });
  assert.equal(t.address, "b");
  assert.equal(t.user, "u2");
});

test("ssh arguments: -J, UserKnownHostsFile, StrictHostKeyChecking, ConnectTimeout; extra args win", () => {
  const t = target({
    ansible_ssh_common_args: "-J jump.example.com -o StrictHostKeyChecking=accept-new",
    ansible_ssh_extra_args:
      "-o 'UserKnownHostsFile ~/fleet_known_hosts' -oConnectTimeout=4 -o StrictHostKeyChecking=yes",
  });
  assert.equal(t.jump?.address, "jump.example.com");
  assert.equal(t.jump?.port, 22);
  assert.equal(t.knownHostsFile, path.join(os.homedir(), "fleet_known_hosts"));
  assert.equal(t.hostKeyChecking, "strict");
  assert.equal(t.connectTimeoutMs, 4000);
});

test("what Galley cannot do is refused with a hint, naming where the variable was set", () => {
  fails(
    { ansible_password: "x" },
    /^hosts\.ini:16: host web1: ansible_password is not supported/,
    /keys only/,
  );
  fails({ ansible_ssh_pass: "x" }, /ansible_ssh_pass is not supported/, /ansible_ssh_private_key_file/);
  fails({ ansible_become_password: "x" }, /ansible_become_password is not supported/, /NOPASSWD/);
  fails({ ansible_become_method: "su" }, /Galley becomes another user with sudo only/, /sudo/);
  fails({ ansible_connection: "local" }, /Galley reaches hosts over SSH only/, /ssh/);
  fails({ ansible_port: "ssh" }, /ansible_port must be a whole number from 1 to 65535/, /fix/);
  fails({ ansible_become: "maybe" }, /ansible_become must be true or false/, /true or false/);
  fails({ ansible_host: "{{ inventory_hostname }}.example.com" }, /Jinja template/, /value itself/);
  fails(
    { ansible_ssh_common_args: "-o ProxyCommand='ssh -W %h:%p bastion'" },
    /ProxyCommand is not supported/,
    /ProxyJump/,
  );
  fails({ ansible_ssh_common_args: "-J a@b,c@d" }, /cannot read the jump host/, /one jump host/);
});
