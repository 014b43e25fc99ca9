// A resource's changes as a report holds them (core/report.ts Change), as lines of a diff: text
// content as its unified diff, other properties as "-old" / "+new". Pure (no DOM, no preact): the
// server's tests check it; diff-view.ts renders it.

/** One property's change, as a report records it. */
export interface Change {
  property: string;
  from?: unknown;
  to?: unknown;
  /** a unified diff of text content */
  diff?: string | undefined;
}

/** The kinds of line in a diff. */
export type DiffLineKind = "file" | "hunk" | "add" | "del" | "context" | "note";

/** One line of a diff with its kind. */
export interface DiffLine {
  kind: DiffLineKind;
  text: string;
}

/** What a report shows in place of a sensitive value. */
export const sensitive = "(sensitive)";

/** A unified diff's lines with their kinds ("+++"/"---" before the first hunk are the file header). */
export function diffLines(diff: string): DiffLine[] {
  if (diff === "") return [];
  let inHunk = false;
  return diff.split("\n").map((text) => {
    if (text.startsWith("@@")) inHunk = true;
    return { kind: kindOf(text, inHunk), text };
  });
}

function kindOf(text: string, inHunk: boolean): DiffLineKind {
  if (!inHunk && (text.startsWith("+++ ") || text.startsWith("--- "))) return "file";
  if (text.startsWith("@@")) return "hunk";
  if (text.startsWith("+")) return "add";
  if (text.startsWith("-")) return "del";
  if (text.startsWith("\\")) return "note";
  return "context";
}

/** A changed value as text: strings as they are, anything else as JSON. */
export function valueText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return JSON.stringify(value);
}

/** The lines of a property change without a text diff: "-property: old" and "+property: new" (each line of a value marked). */
export function propertyLines(change: Change): DiffLine[] {
  const side = (kind: "del" | "add", sign: string, value: unknown): DiffLine[] =>
    `${change.property}: ${valueText(value)}`.split("\n").map((text) => ({ kind, text: `${sign}${text}` }));
  const lines: DiffLine[] = [
    ...(change.from === undefined ? [] : side("del", "-", change.from)),
    ...(change.to === undefined ? [] : side("add", "+", change.to)),
  ];
  if (lines.length === 0) lines.push({ kind: "context", text: ` ${change.property}` });
  return lines;
}

/** Whether a change hides its values (a sensitive resource, or a type's secret property). */
export function isSensitive(change: Change): boolean {
  return change.from === sensitive || change.to === sensitive;
}

/** Reads a report's `diff` field defensively (an array of changes, or nothing). */
export function changesOf(value: unknown): Change[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (c): c is Change => c !== null && typeof c === "object" && typeof (c as Change).property === "string",
  );
}
