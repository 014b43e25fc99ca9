import * as fs from "node:fs/promises";
import * as path from "node:path";

// The reference workload of workload.ts for Galley's peers: the same directories, files,
// templated files and symlinks, as a Puppet manifest and as an Ansible playbook.

const template = {
  // item.conf.eta in workload.ts, in each peer's template language
  epp: "# item <%= $index %>\nname = <%= $name %>\nport = <%= $port %>\n<% $tags.each |$tag| { -%>\ntag = <%= $tag %>\n<% } -%>\n",
  // tags and name are task keywords in Ansible: the variables get a prefix
  jinja:
    "# item {{ item_index }}\nname = {{ item_name }}\nport = {{ item_port }}\n{% for tag in item_tags %}\ntag = {{ tag }}\n{% endfor %}\n",
};

/** A manifest for `puppet apply` converging the workload under `target`. */
export async function writePuppetManifest(dir: string, target: string, n: number): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const templateFile = path.join(dir, "item.conf.epp");
  await fs.writeFile(templateFile, template.epp);
  const dirs = n / 10;
  const lines = [`file { ${q(target)}: ensure => directory, mode => '0755' }`];
  for (let d = 0; d < dirs; d++)
    lines.push(`file { ${q(`${target}/d${d}`)}: ensure => directory, mode => '0755' }`);
  for (let i = 0; i < n; i++) {
    lines.push(
      `file { ${q(`${target}/d${i % dirs}/file${i}.txt`)}: ensure => file, mode => '0644', content => ${q(`fixed content of file ${i}\n`)} }`,
    );
  }
  for (let i = 0; i < n / 2; i++) {
    const vars = `{ 'index' => ${i}, 'name' => 'item-${i}', 'port' => ${8000 + i}, 'tags' => ['a', 'b'] }`;
    lines.push(
      `file { ${q(`${target}/d${i % dirs}/tmpl${i}.conf`)}: ensure => file, mode => '0644', content => epp(${q(templateFile)}, ${vars}) }`,
    );
  }
  for (let l = 0; l < n / 10; l++) {
    lines.push(
      `file { ${q(`${target}/link${l}`)}: ensure => link, target => ${q(`${target}/d${l}/file${l}.txt`)} }`,
    );
  }
  const manifest = path.join(dir, "site.pp");
  await fs.writeFile(manifest, `${lines.join("\n")}\n`);
  return manifest;
}

/** A playbook converging the workload under `target` on every host of an inventory. */
export async function writeAnsiblePlaybook(dir: string, target: string, n: number): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "item.conf.j2"), template.jinja);
  const dirs = n / 10;
  const playbook = `- hosts: all
  vars:
    root: ${JSON.stringify(target)}
  tasks:
    - name: root directory
      file: { path: "{{ root }}", state: directory, mode: "0755" }
    - name: directories
      file: { path: "{{ root }}/d{{ item }}", state: directory, mode: "0755" }
      loop: "{{ range(0, ${dirs}) | list }}"
    - name: files
      copy: { dest: "{{ root }}/d{{ item % ${dirs} }}/file{{ item }}.txt", content: "fixed content of file {{ item }}\\n", mode: "0644" }
      loop: "{{ range(0, ${n}) | list }}"
    - name: templated files
      template: { src: item.conf.j2, dest: "{{ root }}/d{{ item % ${dirs} }}/tmpl{{ item }}.conf", mode: "0644" }
      vars: { item_index: "{{ item }}", item_name: "item-{{ item }}", item_port: "{{ 8000 + item }}", item_tags: [a, b] }
      loop: "{{ range(0, ${n / 2}) | list }}"
    - name: links
      file: { src: "{{ root }}/d{{ item }}/file{{ item }}.txt", dest: "{{ root }}/link{{ item }}", state: link }
      loop: "{{ range(0, ${n / 10}) | list }}"
`;
  const file = path.join(dir, "playbook.yaml");
  await fs.writeFile(file, playbook);
  return file;
}

function q(text: string): string {
  return `'${text.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`;
}
