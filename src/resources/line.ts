import * as posix from "node:path/posix";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Host } from "../core/host.ts";
import {
  type Change,
  defineResourceType,
  described,
  modeSchema,
  optional,
  pathSchema,
} from "../core/resource.ts";
import { contentChange, diffAttributes } from "./filestate.ts";

const regexSchema = v.pipe(
  v.string(),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    try {
      new RegExp(dataset.value);
    } catch (error) {
      addIssue({ message: `not a valid regular expression: ${(error as Error).message}` });
    }
  }),
);

const schema = v.pipe(
  v.strictObject({
    path: pathSchema("the text file (defaults to the resource name)"),
    line: v.optional(
      described(
        v.pipe(v.string(), v.regex(/^[^\n\r]*$/, "must be a single line")),
        "the wanted line, without its line break (required for add)",
      ),
    ),
    match: v.optional(
      described(
        regexSchema,
        "a JavaScript regular expression searched in each line (anchor it with ^…$). add: the last matching line " +
          "is replaced by `line` (every one with replaceAll); none: `line` is inserted; `line` already present and not " +
          "matching counts as done. remove: every matching line goes",
      ),
    ),
    after: v.optional(
      described(
        regexSchema,
        "add: insert `line` after the last line matching this regular expression (none: at the end)",
      ),
    ),
    replaceAll: v.optional(
      described(
        v.boolean(),
        "add: replace every line matching `match`; false replaces only the last one, as Ansible's lineinfile does",
      ),
      false,
    ),
    create: v.optional(
      described(v.boolean(), "add: create the file when it is missing (else a missing file is an error)"),
      false,
    ),
    mode: v.optional(
      modeSchema("permission bits of a file created by `create` (existing files keep theirs)"),
    ),
    owner: v.optional(
      described(v.string(), "owner of a file created by `create` (existing files keep theirs)"),
    ),
    group: v.optional(
      described(v.string(), "group of a file created by `create` (existing files keep theirs)"),
    ),
  }),
  v.check(
    (props) => props.line !== undefined || props.match !== undefined,
    "give `line` (the wanted line) or `match` (lines to remove)",
  ),
);

type Props = v.InferOutput<typeof schema>;

/** The file a line lives in, after following symlinks. */
export interface LineState {
  /** the regular file that is read and written: `path` with symlinks followed */
  realPath: string;
  type: "file" | "directory" | "symlink" | "other";
  content: Uint8Array | undefined;
  mode: number;
  owner: string;
  group: string;
}

/** One line in a text file, like Ansible's lineinfile. */
export const line = defineResourceType<typeof schema, LineState>({
  type: "line",
  description:
    "One line in a text file, like Ansible's lineinfile: added, replaced (by a regular expression) or " +
    "removed; other lines, mode and owner are kept. A changed file always ends with a line break.",
  actions: ["add", "remove"],
  schema,
  nameProperty: "path",

  key: (props) => `${props.path}:${props.match === undefined ? props.line : `/${props.match}/`}`,

  autoRequires: (props) => [
    { path: props.path },
    ...(props.owner ? [{ user: props.owner }] : []),
    ...(props.group ? [{ group: props.group }] : []),
  ],

  read: readLine,

  diff(current, desired, action) {
    if (!current) {
      if (action === "remove") return [];
      const created = render(edit([], desired, action) ?? [], "\n");
      const changes: Change[] = [{ property: "ensure", from: "absent", to: "file" }];
      // without create, apply refuses; the plan still shows what would be needed
      if (!desired.create) return changes;
      return [
        ...changes,
        contentChange(desired.path, undefined, created),
        ...diffAttributes(undefined, desired),
      ];
    }
    if (current.type !== "file") return [{ property: "type", from: current.type, to: "file" }];
    const next = newContent(current, desired, action);
    return next ? [contentChange(desired.path, current.content, next)] : [];
  },

  async apply(host, desired, action) {
    // read again: another line resource may have rewritten this file since the prefetched read
    const current = await readLine(host, desired);
    if (!current) {
      if (action === "remove") return;
      if (!desired.create) {
        throw new GalleyError("APPLY_FAILED", `line[${desired.path}]: ${desired.path} does not exist`, {
          hint: "set create: true to create it with the line, or declare the file before this line",
        });
      }
      await checkParent(host, desired.path);
      await host.writeFile(desired.path, render(edit([], desired, action) ?? [], "\n"), {
        mode: desired.mode ?? 0o644,
        ...optional("owner", desired.owner),
        ...optional("group", desired.group),
      });
      return;
    }
    if (current.type !== "file") {
      const what = current.type === "symlink" ? "a dangling or looping symlink" : `a ${current.type}`;
      throw new GalleyError(
        "APPLY_FAILED",
        `line[${desired.path}]: ${current.realPath} is ${what}, not a file`,
        {
          hint: "point `path` at a regular text file",
        },
      );
    }
    const next = newContent(current, desired, action);
    // keep the file's own mode and ownership: only its lines are managed
    if (next)
      await host.writeFile(current.realPath, next, {
        mode: current.mode,
        owner: current.owner,
        group: current.group,
      });
  },
});

/** The file at `path`, symlinks followed; undefined when nothing is there. */
async function readLine(host: Host, props: Props): Promise<LineState | undefined> {
  let realPath = props.path;
  for (let hops = 0; hops < 16; hops++) {
    const stat = await host.stat(realPath);
    if (!stat)
      return hops === 0
        ? undefined
        : { realPath, type: "symlink", content: undefined, mode: 0, owner: "", group: "" };
    if (stat.type === "symlink" && stat.target !== undefined) {
      realPath = posix.resolve(posix.dirname(realPath), stat.target);
      continue;
    }
    const content = stat.type === "file" ? await host.readFile(realPath) : undefined;
    return { realPath, type: stat.type, content, mode: stat.mode, owner: stat.owner, group: stat.group };
  }
  return { realPath, type: "symlink", content: undefined, mode: 0, owner: "", group: "" };
}

/** The edited file as bytes, or undefined when the line is already in state. */
function newContent(current: LineState, desired: Props, action: string): Uint8Array | undefined {
  const text = new TextDecoder().decode(current.content ?? new Uint8Array());
  const eol = text.includes("\r\n") ? "\r\n" : "\n";
  const lines = text === "" ? [] : text.split(eol);
  if (lines.at(-1) === "") lines.pop();
  const edited = edit(lines, desired, action);
  return edited ? render(edited, eol) : undefined;
}

/**
 * The lines after the action, or undefined when nothing changes. add: the last line matching
 * `match` (all with replaceAll) becomes `line`; without a match, `line` is inserted unless present.
 */
export function edit(lines: readonly string[], props: Props, action: string): string[] | undefined {
  const match = props.match === undefined ? undefined : new RegExp(props.match);
  if (action === "remove") {
    const kept = lines.filter((text) => (match ? !match.test(text) : text !== props.line));
    return kept.length === lines.length ? undefined : kept;
  }
  const wanted = props.line;
  if (wanted === undefined) {
    throw new GalleyError("RESOURCE_INVALID", `line[${props.path}]: action add needs \`line\``, {
      hint: "give the wanted line, or use action remove to delete the lines matching `match`",
    });
  }
  if (match && props.replaceAll && lines.some((text) => match.test(text) && text !== wanted)) {
    return lines.map((text) => (match.test(text) ? wanted : text));
  }
  // a line that no longer matches once in place (match finds the old form) counts as present
  if (match && !props.replaceAll && !(lines.includes(wanted) && !match.test(wanted))) {
    const last = lines.findLastIndex((text) => match.test(text));
    if (last >= 0) return lines[last] === wanted ? undefined : lines.with(last, wanted);
  }
  if (lines.includes(wanted)) return undefined;
  const after = props.after === undefined ? undefined : new RegExp(props.after);
  const anchor = after ? lines.findLastIndex((text) => after.test(text)) : -1;
  return anchor >= 0
    ? [...lines.slice(0, anchor + 1), wanted, ...lines.slice(anchor + 1)]
    : [...lines, wanted];
}

/** Every line ends with the file's line break, the last one included. */
function render(lines: readonly string[], eol: string): Uint8Array {
  return new TextEncoder().encode(lines.map((text) => text + eol).join(""));
}

async function checkParent(host: Host, file: string): Promise<void> {
  const parent = await host.stat(posix.dirname(file));
  if (parent?.type !== "directory") {
    throw new GalleyError(
      "APPLY_FAILED",
      `line[${file}]: no directory ${posix.dirname(file)} to create it in`,
      {
        hint: "declare the directory before this line",
      },
    );
  }
}
