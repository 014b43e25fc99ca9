import { html } from "htm/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, api, seg } from "../api.ts";
import {
  ErrorBox,
  LiveState,
  Link,
  Loading,
  StatusBadge,
  Table,
  Time,
  useAsync,
  useTitle,
} from "../components.ts";
import { type PhaseProgress, phaseOf, progressText } from "../deploy-progress.ts";
import type { FeedEntry } from "../feed-cursor.ts";
import { LogView, useLogModel } from "../log-view.ts";
import { Crumbs, Facts } from "../parts.ts";
import type { PageProps } from "../router.ts";
import { useCoalesced, useFeed } from "../stream.ts";
import type { EventRecord } from "../types.ts";

// One lifecycle event as it runs: its status, each instance's outcome (with the runner's progress
// while it runs, the report's counts once done, a link to the report), and its log, live from the
// stack's feed (subject event:ID). The record is read again once the stream's start is fixed and
// every entry since is applied on top of it.

/** One instance's part in an event (store InstanceOutcome), as GET /v1/events/:id holds it. */
export interface Outcome {
  instance: string;
  status: string;
  stateVersion?: number | undefined;
  bundle?: string | undefined;
  report?: unknown;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
}

/** GET /v1/events/:id. */
interface EventAnswer {
  event: EventRecord & { bundle?: string | undefined; outcomes: Outcome[] };
  action?: { status: string; error?: { code: string; message: string; hint?: string } } | undefined;
}

interface Live {
  event: EventAnswer["event"];
  progress: Map<string, PhaseProgress>;
}

/** The statuses an event ends with. */
const finished = new Set(["succeeded", "failed", "superseded"]);

/** Applies feed entries (event, outcome, phase) to an event in order. */
export function applyEventEntries(live: Live, entries: readonly FeedEntry[]): Live {
  let { event, progress } = live;
  for (const entry of entries) {
    const data = (entry.data ?? {}) as Record<string, unknown>;
    if (entry.kind === "event" && typeof data.status === "string") {
      event = { ...event, status: data.status };
      if (finished.has(data.status) && !event.finishedAt) event = { ...event, finishedAt: entry.at };
    } else if (entry.kind === "outcome" && typeof data.instance === "string") {
      const outcome: Outcome = {
        instance: data.instance,
        status: typeof data.status === "string" ? data.status : "running",
        ...(typeof data.startedAt === "string" ? { startedAt: data.startedAt } : {}),
        ...(typeof data.finishedAt === "string" ? { finishedAt: data.finishedAt } : {}),
      };
      const at = event.outcomes.findIndex((o) => o.instance === outcome.instance);
      const outcomes = [...event.outcomes];
      if (at < 0) outcomes.push(outcome);
      else outcomes[at] = { ...outcomes[at], ...outcome };
      event = { ...event, outcomes };
    } else if (entry.kind === "phase") {
      const phase = phaseOf(entry.data);
      if (phase) progress = new Map(progress).set(phase.instance, phase);
    }
  }
  return { event, progress };
}

/** A report's counts: "3 changed, 1 failed" (undefined without a report). */
export function countsOf(report: unknown): string | undefined {
  const summary = (report as { summary?: Record<string, unknown> } | null | undefined)?.summary;
  if (!summary || typeof summary !== "object") return undefined;
  const n = (key: string) => (typeof summary[key] === "number" ? (summary[key] as number) : 0);
  const parts = [`${n("changed")} changed`];
  if (n("failed") > 0) parts.push(`${n("failed")} failed`);
  parts.push(`${n("unchanged")} unchanged`);
  return parts.join(", ");
}

/** The page /events/:id. */
export default function EventPage(props: PageProps) {
  const id = props.params.id ?? "";
  useTitle(`Event #${id}`);
  const record = useAsync(() => api.get<EventAnswer>(`/v1/events/${seg(id)}`), [id]);
  const stack = record.data?.event.stack;
  const subject = `event:${id}`;
  const model = useLogModel(stack, subject);
  const seen = useRef<FeedEntry[]>([]);
  const [live, setLive] = useState<Live | undefined>(undefined);
  const reloadSoon = useCoalesced(() => void record.reload(), 100);
  const feed = useFeed({
    stack,
    subject,
    kinds: ["event", "outcome", "phase", "log"],
    enabled: stack !== undefined,
    onEntries: (entries) => {
      model?.append(entries.filter((e) => e.kind === "log"));
      const state = entries.filter((e) => e.kind !== "log");
      if (state.length === 0) return;
      // the record's own changes, kept to apply again on a fresh read (a runner's progress is not
      // in the record: it lives only in the page's state, and is not kept here)
      seen.current.push(...state.filter((e) => e.kind !== "phase"));
      setLive((current) => (current ? applyEventEntries(current, state) : current));
      // the end: the reports are in the record (each host's counts came with its "done" phase)
      if (
        state.some(
          (e) => e.kind === "event" && finished.has(String((e.data as { status?: unknown })?.status)),
        )
      )
        reloadSoon("end");
    },
  });
  useEffect(() => {
    if (feed.ready) void record.reload();
  }, [feed.ready]);
  useEffect(() => {
    const data = record.data;
    if (data)
      setLive((current) => ({
        ...applyEventEntries({ event: data.event, progress: new Map() }, seen.current),
        progress: current?.progress ?? new Map(),
      }));
  }, [record.data]);
  if (live === undefined)
    return html`<h1>Event #${id}</h1>
      ${record.error ? html`<${ErrorBox} error=${record.error} title="Event not loaded" />` : html`<${Loading} what="the event" />`}`;
  const e = live.event;
  const error = record.data?.action?.error;
  const args =
    e.args && typeof e.args === "object" && Object.keys(e.args).length > 0 ? JSON.stringify(e.args) : "";
  return html`<${Crumbs} trail=${[["Stacks", "/"], [e.stack, `/stacks/${seg(e.stack)}`], [`Event #${e.id}`]]} />
    <div class="page-head">
      <h1>Event #${e.id}</h1>
      <p class="event-status" role="status" aria-live="polite">${e.kind}: <${StatusBadge} status=${e.status} /></p>
      <${LiveState} state=${feed.state} />
    </div>
    ${
      error
        ? html`<${ErrorBox} error=${new ApiError(0, error.code, error.message, error.hint)} title="Its run on the server failed" />`
        : null
    }
    <${Facts}
      items=${[
        ["Kind", html`${e.kind}${args ? html` <code>${args}</code>` : null}`],
        ["Stack state", e.stateVersion === undefined ? "—" : `version ${e.stateVersion}`],
        ["Cookbooks", e.bundle ? html`<code>${e.bundle.slice(0, 19)}</code>` : null],
        ["Created", html`<${Time} at=${e.createdAt} />`],
        ["Started", html`<${Time} at=${e.startedAt} empty="not yet" />`],
        ["Finished", html`<${Time} at=${e.finishedAt} empty="not yet" />`],
      ]}
    />
    <section aria-labelledby="outcomes-heading">
      <h2 id="outcomes-heading">Instances</h2>
      ${
        e.outcomes.length === 0
          ? html`<p>No instance has started yet.</p>`
          : html`<${Table} caption="Outcomes by instance" head=${["Instance", "Status", "Progress", "Started", "Finished", "Report"]}>
              ${e.outcomes.map((o) => {
                const phase = live.progress.get(o.instance);
                // the report's counts once read; until then the runner's progress (converging, converged …)
                const progress = countsOf(o.report) ?? (phase ? progressText(phase) : undefined);
                return html`<tr>
                  <td><${Link} href=${`/stacks/${seg(e.stack)}/instances/${seg(o.instance)}`}>${o.instance}<//></td>
                  <td data-status=${o.status}><${StatusBadge} status=${o.status} /></td>
                  <td>${progress ?? "—"}</td>
                  <td><${Time} at=${o.startedAt} /></td>
                  <td><${Time} at=${o.finishedAt} empty="not yet" /></td>
                  <td><${Link} href=${`/events/${e.id}/instances/${seg(o.instance)}`} aria-label=${`Report of ${o.instance}`}>Report<//></td>
                </tr>`;
              })}
            <//>`
      }
    </section>
    <section class="log-section" aria-labelledby="log-heading">
      <h2 id="log-heading">Log</h2>
      ${model ? html`<${LogView} model=${model} label="Event log" />` : null}
      <p class="hint">Each instance's whole log is in its report.</p>
    </section>
    <${ErrorBox} error=${record.error} title="Event not read again" />`;
}
