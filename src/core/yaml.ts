import * as fs from "node:fs/promises";
import {
  type Document,
  isAlias,
  isCollection,
  isNode,
  isPair,
  isScalar,
  LineCounter,
  parseDocument,
  type Tags,
  visit,
} from "yaml";
import { type ErrorCode, GalleyError } from "./errors.ts";

/**
 * The limits every YAML file Galley reads is held to (documented in docs/cli.md): beyond them a
 * file is refused with its kind's error code, not parsed into memory or recursion without end.
 */
export const yamlLimits = {
  /** bytes of one file */
  maxBytes: 8 * 1024 * 1024,
  /** nested mappings and sequences */
  maxDepth: 64,
  /** the yaml package's alias expansion budget (billion laughs): aliased nodes read per alias */
  maxAliasCount: 100,
} as const;

/** Mapping keys that JavaScript objects (and valibot's records) treat specially: refused, never dropped. */
export const reservedKeys: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/** How to read one kind of YAML file. */
export interface YamlOptions {
  /** the error code of the file's kind: STACK_INVALID, INVENTORY_INVALID… */
  code: ErrorCode;
  /** what to do, when the default (fix that line) is not enough */
  hint?: string;
  /** YAML 1.1 (Ansible's), else 1.2 */
  version?: "1.1" | "1.2";
  /** extra tags (`!sensitive`, Ansible's `!unsafe`), or a function of the schema's tags */
  customTags?: Tags | ((tags: Tags) => Tags);
  /** duplicate keys are an error unless false (Ansible: the last one wins) */
  uniqueKeys?: boolean;
  /** the text is secret: errors name the line only, never quote it */
  secret?: boolean;
  /** values may hold a NUL character (`"\0"`): attribute data may, names, paths and addresses never */
  allowNul?: boolean;
}

/** A YAML text read within the limits: its value, its document, and the line of an offset. */
export interface LoadedYaml {
  value: unknown;
  doc: Document;
  lineAt(offset: number): number;
}

// YAML 1.1 types JSON has no value for (bytes, ordered maps, sets, dates): refused as unknown tags
const foreignTags = /:(binary|omap|pairs|set|timestamp)$/;

/**
 * Parses one YAML (or JSON) text with the limits, unique keys, no alias to nothing, no tag
 * outside the schema and no reserved key; every failure is a GalleyError with `options.code`,
 * `file:line` and a hint.
 *
 * @example loadYaml("stacks/prod.yaml", text, { code: "STACK_INVALID" }).value
 */
export function loadYaml(file: string, text: string, options: YamlOptions): LoadedYaml {
  const fail = (line: number | undefined, message: string, hint?: string): never => {
    const said = options.secret ? "not valid YAML, or beyond a limit" : message;
    throw new GalleyError(options.code, `${file}${line ? `:${line}` : ""}: ${said}`, {
      hint: hint ?? options.hint ?? "fix the YAML at that line",
    });
  };
  if (text.length > yamlLimits.maxBytes) {
    fail(
      undefined,
      `the file is larger than ${yamlLimits.maxBytes} bytes`,
      "split it, or keep data out of it",
    );
  }
  const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(text);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(2, "0");
    fail(
      lineOf(text, control.index),
      `a control character (0x${code}) in the text: this is not a YAML file`,
      "write escapes such as \\0 inside double quotes, or name the right file",
    );
  }
  const lineCounter = new LineCounter();
  const customTags = options.customTags;
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: !options.secret,
    version: options.version ?? "1.2",
    resolveKnownTags: false,
    uniqueKeys: options.uniqueKeys ?? true,
    customTags: (tags: Tags) =>
      (typeof customTags === "function" ? customTags(tags) : [...tags, ...(customTags ?? [])]).filter(
        (tag) => typeof tag === "string" || !foreignTags.test(tag.tag),
      ),
  });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  const unknownTag = doc.warnings.find((w) => w.code === "TAG_RESOLVE_FAILED");
  const problem = doc.errors[0] ?? unknownTag;
  if (problem) {
    const line = lineAt(problem.pos[0]);
    if (problem === unknownTag) {
      const tag = firstLine(problem.message)
        .replace(/^Unresolved tag: /, "")
        .replace("tag:yaml.org,2002:", "!!");
      fail(line, `the tag ${tag} is not supported: Galley reads plain values only`, "remove the tag");
    }
    fail(line, problem.code === "RESOURCE_EXHAUSTION" ? "nested too deeply" : firstLine(problem.message));
  }
  walk(doc, (node, depth, key) => {
    const offset = (node as { range?: [number] }).range?.[0] ?? 0;
    if (depth > yamlLimits.maxDepth) {
      fail(lineAt(offset), `nested more than ${yamlLimits.maxDepth} levels deep`, "flatten the data");
    }
    if (!options.allowNul && isScalar(node) && typeof node.value === "string" && node.value.includes("\0")) {
      fail(
        lineAt(offset),
        "a NUL character (\\0) in a value: no name, path or address can hold one",
        "remove it",
      );
    }
    if (key && reservedKeys.has(key)) {
      fail(
        lineAt(offset),
        `"${key}" cannot be used as a key: JavaScript objects reserve it`,
        "rename the key",
      );
    }
  });
  // in document order (depth is bounded now): an alias names the last anchor set before it
  const anchors = new Map<string, unknown>();
  visit(doc, (_key, node, path) => {
    if (isNode(node) && node.anchor) anchors.set(node.anchor, node);
    if (!isAlias(node)) return;
    const offset = node.range?.[0] ?? 0;
    const target = anchors.get(node.source);
    if (target === undefined) {
      fail(
        lineAt(offset),
        `the alias *${node.source} names no anchor (an anchor &${node.source} must come before it)`,
        `define &${node.source} before the alias, or write the value itself`,
      );
    }
    if (path.includes(target as never)) {
      fail(
        lineAt(offset),
        `the alias *${node.source} is inside the value it names: that value would contain itself`,
        "write the value out instead of aliasing it from within",
      );
    }
  });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: yamlLimits.maxAliasCount });
  } catch (error) {
    // the only error left is the alias budget: aliases that expand into too much data
    const alias = firstAlias(doc);
    fail(
      alias === undefined ? undefined : lineAt(alias),
      `aliases expand into too much data (${error instanceof Error ? error.message : String(error)})`,
      "write the data out instead of nesting aliases of aliases",
    );
  }
  return { value, doc, lineAt };
}

/**
 * Reads a YAML file's text: within the size limit and valid UTF-8, else a GalleyError with
 * `options.code`. A missing file is undefined, for readers where that is allowed.
 */
export async function readYamlText(file: string, options: YamlOptions): Promise<string | undefined> {
  let bytes: Buffer;
  try {
    const stat = await fs.stat(file);
    if (stat.isFile() && stat.size > yamlLimits.maxBytes) {
      throw new GalleyError(options.code, `${file}: the file is larger than ${yamlLimits.maxBytes} bytes`, {
        hint: "split it, or keep data out of it",
      });
    }
    bytes = await fs.readFile(file);
  } catch (error) {
    if (error instanceof GalleyError) throw error;
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new GalleyError(
      options.code,
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
      { hint: options.hint ?? "name a readable file" },
    );
  }
  return decodeYamlText(file, bytes, options);
}

/** The text of YAML bytes, refusing what is not UTF-8 (the line of the first bad byte is named). */
export function decodeYamlText(file: string, bytes: Uint8Array, options: YamlOptions): string {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    const text = new TextDecoder("utf-8").decode(bytes);
    const bad = text.indexOf("\uFFFD");
    throw new GalleyError(options.code, `${file}${bad >= 0 ? `:${lineOf(text, bad)}` : ""}: not UTF-8 text`, {
      hint: "save the file as UTF-8",
    });
  }
}

/** The document of a text that may not be valid, for looking up lines only (never throws, never converts). */
export function parseYamlForLines(text: string): { doc: Document; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  return {
    doc: parseDocument(text, { lineCounter, resolveKnownTags: false, uniqueKeys: false }),
    lineCounter,
  };
}

// every node with its depth (no recursion: depth is what is being checked); keys pass their text
function walk(doc: Document, visit: (node: object, depth: number, key: string | undefined) => void): void {
  const stack: [unknown, number][] = [[doc.contents, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (!node || typeof node !== "object") continue;
    visit(node, depth, undefined);
    if (!isCollection(node)) continue;
    for (const item of node.items) {
      if (isPair(item)) {
        if (isScalar(item.key)) visit(item.key, depth + 1, String(item.key.value));
        else stack.push([item.key, depth + 1]);
        stack.push([item.value, depth + 1]);
      } else stack.push([item, depth + 1]);
    }
  }
}

function firstAlias(doc: Document): number | undefined {
  let found: number | undefined;
  walk(doc, (node) => {
    const offset = isAlias(node) ? node.range?.[0] : undefined;
    if (offset !== undefined && (found === undefined || offset < found)) found = offset;
  });
  return found;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i !== -1 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}
