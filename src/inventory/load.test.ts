import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { test } from "node:test";
import type { GalleyError } from "../core/errors.ts";
import { tempDir } from "../resources/testing.ts";
import { loadInventory } from "./load.ts";

/** Writes `files` (path → text) into a fresh folder and returns the folder. */
async function folder(files: Record<string, string>): Promise<string> {
  const dir = await tempDir("galley-inventory-");
  for (const [name, text] of Object.entries(files)) {
    await fs.mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await fs.writeFile(path.join(dir, name), text);
  }
  return dir;
}

async function rejects(file: string, message: RegExp, hint = /./) {
  await assert.rejects(
    loadInventory(file),
    (e: GalleyError) => e.code === "INVENTORY_INVALID" && message.test(e.message) && hint.test(e.hint ?? ""),
    message.source,
  );
}

test("the format comes from the extension and the content", async () => {
  const dir = await folder({
    "galley.yaml": "hosts:\n  web1: { address: 10.0.0.1 }\n  web2:\n",
    "ansible.yml": "all:\n  hosts:\n    web1:\n",
    "groups.yaml": "web:\n  hosts:\n    web1:\n",
    "inventory.json": '{"web": {"hosts": {"web1": null}}}',
    "yaml-noext": "web:\n  hosts:\n    web1:\n",
    "ini-noext": "[web]\nweb1\n",
    "hosts.ini": "web1\n",
    "hosts.cfg": "web1\n",
  });
  const formats: Record<string, string> = {};
  for (const name of await fs.readdir(dir))
    formats[name] = (await loadInventory(path.join(dir, name))).format;
  assert.deepEqual(formats, {
    "galley.yaml": "galley",
    "ansible.yml": "ansible-yaml",
    "groups.yaml": "ansible-yaml",
    "inventory.json": "ansible-yaml",
    "yaml-noext": "ansible-yaml",
    "ini-noext": "ansible-ini",
    "hosts.ini": "ansible-ini",
    "hosts.cfg": "ansible-ini",
  });
});

test("a refused variable in group_vars/ names that file and line", async () => {
  const dir = await folder({
    "hosts.ini": "[web]\nweb1\n",
    "group_vars/all.yml": "ntp: pool\nansible_password: hunter2\n",
  });
  await rejects(
    path.join(dir, "hosts.ini"),
    new RegExp(`^${dir}/group_vars/all\\.yml:2: host web1: ansible_password is not supported`),
    /key/,
  );
});

test("vars files must hold a mapping; empty ones count for nothing", async () => {
  const dir = await folder({
    "hosts.ini": "[web]\nweb1\n",
    "group_vars/web.yml": "",
    "host_vars/web1.yml": "- a\n- b\n",
  });
  await rejects(path.join(dir, "hosts.ini"), /host_vars\/web1\.yml: variables must be a mapping/);
});

test("what Galley cannot read is refused clearly", async () => {
  const dir = await folder({
    "script.py": "#!/usr/bin/env python3\nprint('{}')\n",
    "plugin.yml": "plugin: amazon.aws.aws_ec2\n",
    "vault.yml": "all:\n  vars:\n    secret: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n",
    "typo.yml": "all:\n  host:\n    web1:\n",
    "list.yml": "all:\n  hosts: [web1, web2]\n",
    "empty.yml": "",
  });
  await rejects(path.join(dir, "script.py"), /is a dynamic inventory script/, /ansible-inventory/);
  await rejects(
    path.join(dir, "plugin.yml"),
    /plugin\.yml:1: inventory plugins \(plugin: …\) are not supported/,
  );
  await rejects(path.join(dir, "vault.yml"), /vault\.yml:3: .*!vault/, /galley secrets/);
  await rejects(
    path.join(dir, "typo.yml"),
    /typo\.yml:2: unknown key "host" in group all/,
    /hosts, children and vars/,
  );
  await rejects(path.join(dir, "list.yml"), /list\.yml:2: hosts of group all must be a mapping, not a list/);
  await rejects(
    path.join(dir, "empty.yml"),
    /empty\.yml: an Ansible YAML inventory must be a mapping of groups/,
  );
  await rejects(path.join(dir, "missing.ini"), /missing\.ini does not exist/, /-i FILE/);
  await rejects(dir, /is a folder/);
});

test("an inventory of more than 10,000 hosts is refused at the line that passes the cap", async () => {
  const lines = ["[web]", ...Array.from({ length: 11 }, (_, i) => `g${i}-[0:999]`)];
  const dir = await folder({ "many.ini": `${lines.join("\n")}\n` });
  await rejects(path.join(dir, "many.ini"), /many\.ini:12: the inventory has more than 10000 hosts/);
});
