import { html } from "htm/preact";
import { type DiffLine, changesOf, diffLines, isSensitive, propertyLines, sensitive } from "./diff-lines.ts";

export { type Change, changesOf } from "./diff-lines.ts";

// A resource's changes as a report holds them (core/report.ts Change): text content as a unified
// diff, other properties as "-old / +new" lines, in <pre class="diff">. Added and removed lines
// keep their "+" and "-" and get a class, so colour is never the only mark; a sensitive value is
// "(sensitive)" in the report and is shown as that, marked.

function renderLines(lines: DiffLine[]) {
  return lines.map(
    (line) =>
      html`<span class=${`diff-line diff-${line.kind}${line.text.includes(sensitive) ? " sensitive" : ""}`}
        >${line.text}${"\n"}</span
      >`,
  );
}

/** A resource's changes: a text diff per content change, the other properties together. */
export function DiffView(props: { changes: unknown; label?: string }) {
  const changes = changesOf(props.changes);
  if (changes.length === 0) return null;
  const texts = changes.filter((c) => typeof c.diff === "string" && c.diff !== "");
  const others = changes.filter((c) => !(typeof c.diff === "string" && c.diff !== ""));
  const label = props.label ? `${props.label}: ` : "";
  return html`<div class="changes">
    ${
      others.length > 0 &&
      html`<pre class="diff" aria-label=${`${label}changed properties`} tabindex="0">${renderLines(
        others.flatMap(propertyLines),
      )}</pre>`
    }
    ${texts.map(
      (c) =>
        html`<pre class="diff" aria-label=${`${label}${c.property} diff`} tabindex="0">${renderLines(
          diffLines(c.diff ?? ""),
        )}</pre>`,
    )}
    ${
      changes.some(isSensitive) &&
      html`<p class="sensitive-note">Sensitive values are never shown: they read ${sensitive}.</p>`
    }
  </div>`;
}
