import * as fs from "node:fs/promises";
import { type Document, isAlias, isMap, isScalar, isSeq } from "yaml";
import { parseYamlForLines } from "../core/yaml.ts";

/** Finds the 1-based line where a key path is set in one YAML or JSON text; undefined when it is not there. */
export type LineLookup = (path: readonly string[]) => number | undefined;

/**
 * Where each key path of a YAML (or JSON) text is set: the line of the key for a mapping entry,
 * the line of the item for a sequence entry (its path segment is the index), line of the
 * document for the empty path. Block and flow styles alike.
 *
 * @example yamlLines("app:\n  port: 8080\n")(["app", "port"]) // 2
 */
export function yamlLines(text: string): LineLookup {
  const { doc, lineCounter } = parseYamlForLines(text);
  return (path) => {
    const offset = offsetOf(doc, path);
    return offset === undefined ? undefined : lineCounter.linePos(offset).line;
  };
}

/** The line lookup of an attributes file: YAML and JSON files have one; TypeScript and JavaScript files do not. */
export async function fileLines(file: string): Promise<LineLookup | undefined> {
  if (!/\.(ya?ml|json)$/.test(file)) return undefined;
  const text = await fs.readFile(file, "utf8").catch(() => undefined);
  return text === undefined ? undefined : yamlLines(text);
}

function offsetOf(doc: Document, path: readonly string[]): number | undefined {
  let node: unknown = doc.contents;
  let offset = rangeStart(node);
  for (const segment of path) {
    // an alias stands for the node it names: follow it to find the keys below
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      // the last pair wins, as when the text is read
      const pair = node.items.findLast((p) => isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) return undefined;
      offset = rangeStart(pair.key);
      node = pair.value;
    } else if (isSeq(node) && /^\d+$/.test(segment)) {
      node = node.items[Number(segment)];
      if (node === undefined) return undefined;
      offset = rangeStart(node);
    } else {
      return undefined;
    }
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  return (node as { range?: [number, number, number] } | null | undefined)?.range?.[0];
}
