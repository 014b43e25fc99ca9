import type { ScalarTag, Tags } from "yaml";
import { type LineLookup, yamlLines } from "../cookbooks/yaml-lines.ts";
import { loadYaml } from "../core/yaml.ts";

// PyYAML's YAML 1.1 resolvers, which Ansible uses: `y`/`n` and `1e3` stay strings (the yaml
// package reads them as a boolean and a number), `08` is a string, dates stay text
const pyyaml: Record<string, RegExp> = {
  "/^(?:Y|y|[Yy]es|YES|[Tt]rue|TRUE|[Oo]n|ON)$/": /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/,
  "/^(?:N|n|[Nn]o|NO|[Ff]alse|FALSE|[Oo]ff|OFF)$/": /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/,
  "/^[-+]?[0-9][0-9_]*$/": /^[-+]?(?:0|[1-9][0-9_]*)$/,
  "/^[-+]?(?:[0-9][0-9_]*)?\\.[0-9_]*$/":
    /^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$/,
};

const unsafeTag: ScalarTag = { tag: "!unsafe", resolve: (value) => value };
const vaultTag: ScalarTag = {
  tag: "!vault",
  resolve(_value, onError) {
    onError("Ansible Vault values (!vault) cannot be read by Galley");
    return "";
  },
};

function ansibleTags(tags: Tags): Tags {
  const kept: Tags = [];
  for (const tag of tags) {
    if (typeof tag === "string") kept.push(tag);
    else if (tag.tag.endsWith(":timestamp") || tag.format === "EXP") continue;
    else {
      const replaced = pyyaml["test" in tag ? String(tag.test) : ""];
      kept.push(replaced ? { ...(tag as ScalarTag), test: replaced } : tag);
    }
  }
  return [...kept, unsafeTag, vaultTag];
}

/**
 * Parses an Ansible YAML file (an inventory, or a file of group_vars/ or host_vars/) as Ansible
 * reads it (YAML 1.1, last duplicate key wins); errors name the file and line.
 */
export function parseAnsibleYaml(file: string, text: string): { value: unknown; lineOf: LineLookup } {
  const vault = /!vault\b/.test(text);
  const { value } = loadYaml(file, text, {
    code: "INVENTORY_INVALID",
    version: "1.1",
    customTags: ansibleTags,
    uniqueKeys: false,
    hint: vault
      ? "keep secrets in a file encrypted with galley secrets (see docs/secrets.md) and pass it with --attrs"
      : "fix the YAML syntax at that line",
  });
  return { value, lineOf: yamlLines(text) };
}
