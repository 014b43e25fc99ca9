import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, seg } from "../api.ts";
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
import type { PageProps } from "../router.ts";
import { Crumbs, Facts } from "../parts.ts";
import { useCoalesced, useFeed } from "../stream.ts";

// One instance's runs: its part in each lifecycle event (newest first, with the report's counts)
// and, for an agent instance, the agent's own runs (drift: ok, drift or failed, and how much it
// changed); each links to its report. Live: a new outcome, run or status reloads what it touches.

/** One entry of GET /v1/stacks/:stack/instances/:name/reports. */
interface ReportEntry {
  eventId: number;
  event: { id: number; kind: string; status: string; createdAt: string };
  status: string;
  startedAt?: string | undefined;
  finishedAt?: string | null | undefined;
  bundle?: string | null | undefined;
  changed?: number | null | undefined;
  failed?: number | null | undefined;
  resources?: number | null | undefined;
}

/** One agent run of GET /v1/stacks/:stack/instances/:name/runs. */
interface AgentRun {
  seq: number;
  generation: number;
  kind: string;
  mode: string;
  status: string;
  changed: number;
  failed: number;
  startedAt: string;
  finishedAt: string;
}

/** GET /v1/stacks/:stack/instances/:name/runs. */
interface RunsAnswer {
  agent: { generation: number; connected: boolean; lastSeenAt: string | null } | null;
  runs: AgentRun[];
}

/** GET /v1/stacks/:stack/instances/:name (only what the page shows). */
interface InstanceAnswer {
  instance: {
    status: string;
    address: string | null;
    layers: string[];
    provider: string;
    inService: boolean;
    weight: number;
  };
  history: { from?: string; to: string; at: string; reason: string }[];
}

const count = (n: number | null | undefined) => (n === undefined || n === null ? "—" : String(n));

function Reports(props: { stack: string; name: string; version: number }) {
  const { stack, name, version } = props;
  const list = useAsync(
    () =>
      api.get<{ reports: ReportEntry[] }>(`/v1/stacks/${seg(stack)}/instances/${seg(name)}/reports?limit=50`),
    [stack, name],
  );
  useEffect(() => {
    if (version > 0) void list.reload();
  }, [version]);
  const reports = list.data?.reports ?? [];
  return html`<section aria-labelledby="runs-heading">
    <h2 id="runs-heading">Event runs</h2>
    <${ErrorBox} error=${list.error} title="Runs not loaded" />
    ${
      list.data === undefined
        ? list.error
          ? null
          : html`<${Loading} what="the runs" />`
        : reports.length === 0
          ? html`<p>${name} has not run in any event yet.</p>`
          : html`<${Table} caption=${`Event runs of ${name}`}
              head=${["Event", "Status", "Changed", "Failed", "Resources", "Finished", "Report"]}>
              ${reports.map(
                (r) => html`<tr>
                  <td><${Link} href=${`/events/${r.eventId}`}>#${r.eventId} ${r.event.kind}<//></td>
                  <td data-status=${r.status}><${StatusBadge} status=${r.status} /></td>
                  <td>${count(r.changed)}</td>
                  <td>${count(r.failed)}</td>
                  <td>${count(r.resources)}</td>
                  <td><${Time} at=${r.finishedAt} empty="not yet" /></td>
                  <td><${Link} href=${`/events/${r.eventId}/instances/${seg(name)}`}
                    aria-label=${`Report of event #${r.eventId}`}>Report<//></td>
                </tr>`,
              )}
            <//>`
    }
  </section>`;
}

function DriftRuns(props: { stack: string; name: string; version: number }) {
  const { stack, name, version } = props;
  const answer = useAsync(
    () => api.get<RunsAnswer>(`/v1/stacks/${seg(stack)}/instances/${seg(name)}/runs?limit=50`),
    [stack, name],
  );
  useEffect(() => {
    if (version > 0) void answer.reload();
  }, [version]);
  const data = answer.data;
  if (answer.error) return html`<${ErrorBox} error=${answer.error} title="Agent runs not loaded" />`;
  // an instance without an agent has no runs of its own: nothing to show
  if (data === undefined || (data.agent === null && data.runs.length === 0)) return null;
  return html`<section aria-labelledby="drift-heading">
    <h2 id="drift-heading">Agent runs</h2>
    ${
      data.agent
        ? html`<p>
            Agent (enrollment ${data.agent.generation}):${" "}
            <${StatusBadge} status=${data.agent.connected ? "connected" : "disconnected"} />, last seen${" "}
            <${Time} at=${data.agent.lastSeenAt} empty="never" />.
          </p>`
        : null
    }
    ${
      data.runs.length === 0
        ? html`<p>The agent has reported no run yet.</p>`
        : html`<${Table} caption=${`Agent runs of ${name}`}
            head=${["Run", "Kind", "Mode", "Status", "Changed", "Failed", "Finished", "Report"]}>
            ${data.runs.map(
              (r) => html`<tr>
                <td>${r.generation}/${r.seq}</td>
                <td>${r.kind}</td>
                <td>${r.mode}</td>
                <td data-status=${r.status}><${StatusBadge} status=${r.status} /></td>
                <td>${r.changed}</td>
                <td>${r.failed}</td>
                <td><${Time} at=${r.finishedAt} /></td>
                <td><${Link} href=${`/stacks/${seg(stack)}/instances/${seg(name)}/runs/${r.generation}/${r.seq}`}
                  aria-label=${`Report of run ${r.generation}/${r.seq}`}>Report<//></td>
              </tr>`,
            )}
          <//>`
    }
  </section>`;
}

/** The page /stacks/:stack/instances/:name. */
export default function InstancePage(props: PageProps) {
  const stack = props.params.stack ?? "";
  const name = props.params.name ?? "";
  useTitle(`${name} · ${stack}`);
  const [reports, setReports] = useVersion();
  const [runs, setRuns] = useVersion();
  const reloadInstance = useCoalesced(() => void instance.reload(), 300);
  const bumpReports = useCoalesced(setReports, 500);
  const bumpRuns = useCoalesced(setRuns, 500);
  const feed = useFeed({
    stack,
    kinds: ["instance", "outcome", "run", "agent"],
    onEntries: (entries) => {
      for (const e of entries) {
        const data = (e.data ?? {}) as Record<string, unknown>;
        if (e.kind === "outcome" && data.instance === name) bumpReports(e.id);
        else if (e.subject !== `instance:${name}`) continue;
        else if (e.kind === "run" || e.kind === "agent") bumpRuns(e.id);
        else if (e.kind === "instance") reloadInstance(e.id);
      }
    },
  });
  const instance = useAsync(
    () => api.get<InstanceAnswer>(`/v1/stacks/${seg(stack)}/instances/${seg(name)}`),
    [stack, name],
    feed.ready,
  );
  const i = instance.data?.instance;
  const history = (instance.data?.history ?? []).slice(-10).reverse();
  return html`<${Crumbs} trail=${[["Stacks", "/"], [stack, `/stacks/${seg(stack)}`], [name]]} />
    <div class="page-head">
      <h1>${name}</h1>
      ${i?.status ? html`<p class="instance-status" role="status">Status: <${StatusBadge} status=${i.status} /></p>` : null}
      <${LiveState} state=${feed.state} />
    </div>
    ${
      i
        ? html`<${Facts}
            items=${[
              ["Layers", i.layers.join(", ")],
              ["Address", i.address ?? "—"],
              ["Provider", i.provider],
              [
                "Load balancer",
                `${i.inService ? "in service" : "out of service"}${i.weight !== 100 ? `, weight ${i.weight}` : ""}`,
              ],
            ]}
          />`
        : null
    }
    <${ErrorBox} error=${instance.error} title="Instance not loaded" />
    ${feed.ready ? html`<${Reports} stack=${stack} name=${name} version=${reports} />` : html`<${Loading} />`}
    ${feed.ready ? html`<${DriftRuns} stack=${stack} name=${name} version=${runs} />` : null}
    ${
      history.length > 0
        ? html`<section aria-labelledby="history-heading">
            <h2 id="history-heading">Status history</h2>
            <${Table} caption=${`Last status changes of ${name}`} head=${["When", "From", "To", "Why"]}>
              ${history.map(
                (t) => html`<tr>
                  <td><${Time} at=${t.at} /></td>
                  <td>${t.from ? html`<${StatusBadge} status=${t.from} />` : "—"}</td>
                  <td><${StatusBadge} status=${t.to} /></td>
                  <td>${t.reason}</td>
                </tr>`,
              )}
            <//>
          </section>`
        : null
    }`;
}

/** A counter to bump: a reload of what depends on it. */
function useVersion(): [number, (keys: unknown[]) => void] {
  const [version, setVersion] = useState(0);
  return [version, () => setVersion((n) => n + 1)];
}
