import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, seg } from "../api.ts";
import { ErrorBox, Loading, StatusBadge, Table, Time, useAsync, useTitle } from "../components.ts";
import { DiffView } from "../diff-view.ts";
import { Crumbs, Facts } from "../parts.ts";
import type { PageProps } from "../router.ts";

// One converge report: an instance's part in an event (/events/:id/instances/:name) or one of its
// agent's own runs (/stacks/:stack/instances/:name/runs/:generation/:seq). Its resources with what
// was done to each, the unified diffs of what changed (secret values arrive as "(sensitive)" and
// are shown so), the failures with their hints, and the run's log.

/** One resource in a report (core/report.ts ResourceReport). */
export interface ResourceReport {
  id: string;
  status: string;
  actions?: string[] | undefined;
  diff?: unknown;
  error?: { code?: string; message: string; hint?: string } | undefined;
  reason?: string | undefined;
  ignored?: boolean | undefined;
  durationMs?: number | undefined;
}

/** A converge report (core/report.ts Report), read defensively. */
export interface Report {
  status?: string | undefined;
  mode?: string | undefined;
  host?: string | undefined;
  runList?: string[] | undefined;
  bundle?: string | undefined;
  startedAt?: string | undefined;
  durationMs?: number | undefined;
  summary?: Record<string, number> | undefined;
  resources?: ResourceReport[] | undefined;
}

/** What the page shows, from either source. */
interface Shown {
  title: string;
  stack: string | undefined;
  instance: string;
  status: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
  report: Report | undefined;
  log: string | undefined;
  back: { href: string; text: string };
}

/** A duration for people: "85 ms", "1.2 s", "3 min 5 s". */
export function durationText(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** A report's resources, or none when it holds no list. */
export function resourcesOf(report: Report | undefined): ResourceReport[] {
  const list = report?.resources;
  return Array.isArray(list) ? list.filter((r) => r && typeof r.id === "string") : [];
}

async function loadShown(params: Record<string, string>): Promise<Shown> {
  const name = params.name ?? "";
  if (params.generation !== undefined && params.stack !== undefined) {
    const { stack, generation, seq } = params;
    const answer = await api.get<Record<string, unknown>>(
      `/v1/stacks/${seg(stack)}/instances/${seg(name)}/runs/${seg(generation)}/${seg(seq ?? "")}`,
    );
    const run = (answer.run ?? answer) as {
      kind?: string;
      mode?: string;
      status?: string;
      report?: Report;
      log?: string;
      startedAt?: string;
      finishedAt?: string;
    };
    return {
      title: `${run.kind === "job" ? "Job" : "Drift run"} ${generation}/${seq} on ${name}`,
      stack,
      instance: name,
      status: run.status ?? "unknown",
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      report: run.report,
      log: typeof run.log === "string" ? run.log : undefined,
      back: { href: `/stacks/${seg(stack)}/instances/${seg(name)}`, text: `Runs of ${name}` },
    };
  }
  const id = params.id ?? "";
  const { event, outcome } = await api.get<{
    event?: { stack?: string };
    outcome: {
      status: string;
      report?: Report;
      log?: string;
      startedAt?: string;
      finishedAt?: string;
    };
  }>(`/v1/events/${seg(id)}/instances/${seg(name)}`);
  return {
    title: `Report of ${name} in event #${id}`,
    stack: event?.stack,
    instance: name,
    status: outcome.status,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    report: outcome.report,
    log: outcome.log,
    back: { href: `/events/${seg(id)}`, text: `Event #${id}` },
  };
}

function Resources(props: { resources: ResourceReport[] }) {
  const all = props.resources;
  const quiet = all.filter((r) => r.status === "unchanged" && !r.ignored).length;
  const [showAll, setShowAll] = useState(quiet <= 10);
  const shown = showAll ? all : all.filter((r) => r.status !== "unchanged" || r.ignored);
  return html`<section aria-labelledby="resources-heading">
    <h2 id="resources-heading">Resources</h2>
    ${
      quiet > 0
        ? html`<p class="filter">
            <label><input type="checkbox" checked=${showAll}
              onChange=${(e: Event) => setShowAll((e.currentTarget as HTMLInputElement).checked)} />
              Show the ${quiet} unchanged</label>
          </p>`
        : null
    }
    ${
      all.length === 0
        ? html`<p>The report lists no resources.</p>`
        : html`<${Table} caption="Resources" head=${["Resource", "Action", "Status", "Changed", "Duration"]}>
            ${shown.map(
              (r) => html`<tr>
                <td><code>${r.id}</code></td>
                <td>${r.actions && r.actions.length > 0 ? r.actions.join(", ") : "—"}</td>
                <td data-status=${r.status}><${StatusBadge} status=${r.status} />${
                  r.ignored ? html` <small>(failure ignored)</small>` : null
                }${r.reason ? html` <small>${r.reason}</small>` : null}</td>
                <td>${r.status === "changed" ? "yes" : "no"}</td>
                <td>${durationText(r.durationMs)}</td>
              </tr>`,
            )}
          <//>`
    }
  </section>`;
}

function Changes(props: { resources: ResourceReport[] }) {
  const changed = props.resources.filter((r) => Array.isArray(r.diff) && r.diff.length > 0);
  if (changed.length === 0) return null;
  return html`<section aria-labelledby="changes-heading">
    <h2 id="changes-heading">Changes</h2>
    ${changed.map(
      (r) => html`<section class="change" aria-label=${`Changes of ${r.id}`}>
        <h3><code>${r.id}</code></h3>
        <${DiffView} changes=${r.diff} label=${r.id} />
      </section>`,
    )}
  </section>`;
}

function Failures(props: { resources: ResourceReport[] }) {
  const failed = props.resources.filter((r) => r.error);
  if (failed.length === 0) return null;
  return html`<section aria-labelledby="failures-heading">
    <h2 id="failures-heading">Failures</h2>
    <ul class="failures">
      ${failed.map(
        (r) => html`<li>
          <code>${r.id}</code>${r.error?.code ? ` (${r.error.code})` : ""}: ${r.error?.message}
          ${r.error?.hint ? html`<p class="hint">${r.error.hint}</p>` : null}
        </li>`,
      )}
    </ul>
  </section>`;
}

/** The pages /events/:id/instances/:name and /stacks/:stack/instances/:name/runs/:generation/:seq. */
export default function ReportPage(props: PageProps) {
  const { params } = props;
  const key = JSON.stringify(params);
  const shown = useAsync(() => loadShown(params), [key]);
  useTitle(shown.data?.title ?? "Report");
  if (shown.data === undefined)
    return html`<h1>Report</h1>
      ${shown.error ? html`<${ErrorBox} error=${shown.error} title="Report not loaded" />` : html`<${Loading} what="the report" />`}`;
  const s = shown.data;
  const report = s.report;
  const resources = resourcesOf(report);
  const summary = report?.summary;
  return html`<${Crumbs}
      trail=${[
        ["Stacks", "/"],
        ...(s.stack ? [[s.stack, `/stacks/${seg(s.stack)}`] as const] : []),
        [s.back.text, s.back.href],
        [s.instance],
      ]}
    />
    <h1>${s.title}</h1>
    <p>Status: <${StatusBadge} status=${s.status} />${
      report?.mode === "plan" ? html` <small>(a plan: nothing was changed)</small>` : null
    }</p>
    <${Facts}
      items=${[
        [
          "Resources",
          summary
            ? Object.entries(summary)
                .filter(([k, n]) => n > 0 || k === "changed")
                .map(([k, n]) => `${n} ${k}`)
                .join(", ")
            : null,
        ],
        ["Run list", report?.runList?.length ? report.runList.join(", ") : null],
        ["Cookbooks", report?.bundle ? html`<code>${report.bundle.slice(0, 19)}</code>` : null],
        ["Started", html`<${Time} at=${s.startedAt ?? report?.startedAt} />`],
        ["Finished", html`<${Time} at=${s.finishedAt} empty="not yet" />`],
        ["Took", durationText(report?.durationMs)],
      ]}
    />
    ${report === undefined ? html`<p>No report (yet): the instance has not finished, or sent none.</p>` : null}
    <${Failures} resources=${resources} />
    <${Changes} resources=${resources} />
    ${report !== undefined ? html`<${Resources} resources=${resources} />` : null}
    ${
      s.log
        ? html`<section aria-labelledby="report-log-heading">
            <h2 id="report-log-heading">Log</h2>
            <pre class="log" tabindex="0" aria-label=${`Log of ${s.instance}`}>${s.log}</pre>
          </section>`
        : null
    }`;
}
