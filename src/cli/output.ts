import { styleText } from "node:util";
import { scrubSecrets } from "../core/secrets.ts";
import type { Change } from "../core/resource.ts";
import type { Report, ResourceReport } from "../core/report.ts";

type Style = Parameters<typeof styleText>[0];

/**
 * Prints one JSON document: indented on a terminal, on one line when piped (a program reads it,
 * and a report of 2000 resources is a third smaller).
 */
export function writeJson(value: unknown, replacer?: (key: string, value: unknown) => unknown): void {
  write(`${JSON.stringify(value, replacer, process.stdout.isTTY ? 2 : undefined)}\n`);
}

/** Writes to stdout with every secret of the run (the command's registry, `currentSecrets()`) scrubbed out. */
export function write(text: string): void {
  process.stdout.write(scrubSecrets(text));
}

/** Colours only on a terminal, and never when NO_COLOR is set. */
export function paint(style: Style, text: string, stream: NodeJS.WriteStream = process.stdout): string {
  return styleText(style, text, { stream, validateStream: true });
}

const statusStyle: Record<string, Style> = {
  changed: "yellow",
  pending: "cyan",
  failed: "red",
  skipped: "gray",
  unchanged: "green",
};

/** One resource's lines for human output: status, id, time, then its changes and diffs. */
export function formatResource(report: ResourceReport, options: { diffs: boolean }): string {
  const status = paint(statusStyle[report.status] ?? "reset", report.status.padEnd(8));
  const notified = report.notified?.length
    ? ` (notified by ${report.notified.map((n) => `${n.by}: ${n.action}`).join(", ")})`
    : "";
  const lines = [`  ${status} ${report.id}${notified}${paint("gray", ` ${report.durationMs}ms`)}`];
  if (report.reason) lines.push(`           ${paint("gray", report.reason)}`);
  if (report.error) {
    lines.push(
      `           ${paint("red", `error${report.error.code ? `[${report.error.code}]` : ""}: ${indent(report.error.message)}`)}`,
    );
    if (report.error.hint) lines.push(`           hint: ${report.error.hint}`);
  }
  for (const change of report.diff ?? []) {
    lines.push(`           ${formatChange(change)}`);
    if (options.diffs && change.diff)
      lines.push(...change.diff.split("\n").map((line) => `           ${colorDiffLine(line)}`));
  }
  return lines.join("\n");
}

function formatChange(change: Change): string {
  const show = (value: unknown) =>
    value === undefined ? "(none)" : typeof value === "string" ? value : JSON.stringify(value);
  if (change.from === undefined && change.to !== undefined && change.property !== "content") {
    return `${change.property}: ${show(change.to)}`;
  }
  return `${change.property}: ${show(change.from)} → ${show(change.to)}`;
}

function colorDiffLine(line: string): string {
  if (line.startsWith("+++") || line.startsWith("---")) return paint("bold", line);
  if (line.startsWith("+")) return paint("green", line);
  if (line.startsWith("-")) return paint("red", line);
  if (line.startsWith("@@")) return paint("cyan", line);
  return line;
}

function indent(text: string): string {
  return text.split("\n").join("\n           ");
}

/** The closing summary line of a run. */
export function formatSummary(report: Report): string {
  const s = report.summary;
  const parts =
    report.mode === "plan"
      ? [`${s.pending} to change`, `${s.unchanged} unchanged`]
      : [`${s.changed} changed`, `${s.unchanged} unchanged`];
  parts.push(`${s.failed} failed`, `${s.skipped} skipped`);
  if (s.ignored) parts.push(`${s.ignored} failed (ignored)`);
  const head =
    report.status === "ok"
      ? paint("green", "ok")
      : report.status === "interrupted"
        ? paint("yellow", "interrupted")
        : paint("red", "failed");
  const lines = [
    `${head}: ${parts.join(", ")} in ${(report.durationMs / 1000).toFixed(2)}s on ${report.host}`,
  ];
  for (const n of report.notifications.fromPreviousRun) {
    lines.push(
      `  delivered a notification kept by an earlier run: ${n.target} ${n.action} (from ${n.by}, since ${n.since})`,
    );
  }
  for (const n of report.notifications.kept) {
    lines.push(
      paint(
        "yellow",
        `  kept for the next run: ${n.target} ${n.action} (from ${n.by}): ${report.status === "interrupted" ? "the run was interrupted before it" : "it could not be delivered"}`,
      ),
    );
  }
  for (const n of report.notifications.vanished ?? []) {
    lines.push(
      paint(
        "yellow",
        `  kept, but its target is no longer declared: ${n.target} ${n.action} (from ${n.by}, since ${n.since}); see galley notifications list, drop it with galley notifications drop`,
      ),
    );
  }
  if (report.tempFilesRemoved?.length)
    lines.push(`  removed ${report.tempFilesRemoved.length} temp file(s) an interrupted run left`);
  return lines.join("\n");
}
