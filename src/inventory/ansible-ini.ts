import { GalleyError } from "../core/errors.ts";
import { pythonLiteral } from "./literal.ts";
import { addChild, addGroup, addHost, createRaw, type RawInventory, setVar } from "./model.ts";
import { expandHostPattern } from "./ranges.ts";
import { shlexSplit } from "./shlex.ts";

const section = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const groupName = /^([^:\]\s]+)\s*(?:#.*)?$/;

interface Pending {
  line: number;
  state: "vars" | "children";
  parents: string[];
}

/**
 * Reads an Ansible INI inventory as ansible-core 2.14's ini plugin does: [group], [group:vars],
 * [group:children] (groups may be declared after they are used), host lines with ranges,
 * `host:port` and key=value variables, whose values are Python literals.
 */
export function parseAnsibleIni(file: string, text: string): RawInventory {
  const raw = createRaw(file);
  const pending = new Map<string, Pending>();
  let group = "ungrouped";
  let state = "hosts";
  const lines = text.split(/\r\n|\r|\n/);
  for (const [index, line] of lines.entries()) {
    const lineNumber = index + 1;
    const origin = { file, line: lineNumber };
    const fail = (message: string, hint: string): never => {
      throw new GalleyError("INVENTORY_INVALID", `${file}:${lineNumber}: ${message}`, { hint });
    };
    const text = line.trim();
    if (!text || text[0] === "#" || text[0] === ";") continue;
    const header = section.exec(text);
    if (header) {
      group = header[1]!;
      state = header[2] ?? "hosts";
      if (!["hosts", "vars", "children"].includes(state)) {
        fail(
          `section [${group}:${state}] has an unknown type`,
          "sections are [group], [group:vars] and [group:children]",
        );
      }
      if (!raw.groups.has(group)) {
        if (state === "vars" && !pending.has(group))
          pending.set(group, { line: lineNumber, state, parents: [] });
        addGroup(raw, group);
      }
      const waiting = pending.get(group);
      if (waiting && state !== "vars") {
        if (waiting.state === "children") addPendingChildren(raw, pending, group);
        else pending.delete(group);
      }
      continue;
    }
    if (text.startsWith("[") && text.endsWith("]")) {
      fail(
        `invalid section ${text}`,
        "a section header has no spaces: [group], [group:vars] or [group:children]",
      );
    }
    if (state === "hosts") {
      let words: string[] = [];
      try {
        words = shlexSplit(text);
      } catch (error) {
        fail(
          `cannot split the host line: ${(error as Error).message}`,
          "close the quotes of the host's values",
        );
      }
      const [pattern, ...assignments] = words;
      if (pattern === undefined) fail("expected a host name", "write a host name, then key=value variables");
      const { names, port } = expandHostPattern(pattern!, `${file}:${lineNumber}`);
      if (pattern!.endsWith(":") && port === undefined) {
        fail(`host ${pattern} ends in ':'`, "a ':' after a host name introduces its port: web1:2222");
      }
      const vars: [string, unknown][] = assignments.map((word) => {
        const equals = word.indexOf("=");
        if (equals < 0)
          fail(`expected key=value after the host name, got ${word}`, "write host variables as key=value");
        return [word.slice(0, equals), pythonLiteral(word.slice(equals + 1))];
      });
      for (const name of names) {
        const host = addHost(raw, name, group, port, origin);
        for (const [key, value] of vars) setVar(host, key, value, origin);
      }
    } else if (state === "vars") {
      const equals = text.indexOf("=");
      if (equals < 0)
        fail(`expected key=value in [${group}:vars], got ${text}`, "write group variables as key=value");
      setVar(
        raw.groups.get(group)!,
        text.slice(0, equals).trim(),
        pythonLiteral(text.slice(equals + 1).trim()),
        origin,
      );
    } else {
      const child = groupName.exec(text)?.[1];
      if (child === undefined)
        fail(`expected a group name in [${group}:children], got ${text}`, "list one group per line");
      if (raw.groups.has(child!)) addChild(raw, group, child!, origin);
      else {
        const waiting = pending.get(child!);
        if (waiting) waiting.parents.push(group);
        else pending.set(child!, { line: lineNumber, state: "children", parents: [group] });
      }
    }
  }
  for (const [name, waiting] of pending) {
    throw new GalleyError(
      "INVENTORY_INVALID",
      waiting.state === "vars"
        ? `${file}:${waiting.line}: [${name}:vars] is for a group that is never declared`
        : `${file}:${waiting.line}: [${waiting.parents.at(-1)}:children] names group ${name}, which is never declared`,
      { hint: `declare the group with a [${name}] section (it may be empty), or fix the name` },
    );
  }
  return raw;
}

// a group waited for as a child is declared now: join it to its parents (Ansible's _add_pending_children)
function addPendingChildren(raw: RawInventory, pending: Map<string, Pending>, group: string): void {
  const waiting = pending.get(group)!;
  for (const parent of waiting.parents) {
    addChild(raw, parent, group, { file: raw.file, line: waiting.line });
    if (pending.get(parent)?.state === "children") addPendingChildren(raw, pending, parent);
  }
  pending.delete(group);
}
