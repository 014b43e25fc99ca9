import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, can, seg } from "../api.ts";
import {
  ConfirmButton,
  ErrorBox,
  Link,
  LiveState,
  Loading,
  type Outcome,
  OutcomeLine,
  StatusBadge,
  Table,
  Time,
  useAsync,
  useTitle,
} from "../components.ts";
import { applyEntry, canStart, canStop } from "../live.ts";
import type { PageProps } from "../router.ts";
import { useCoalesced, useFeed } from "../stream.ts";
import type { InstanceSummary, StackSummary } from "../types.ts";
import { CloneForm, EventForm, RecipesForm } from "./stack-actions.ts";

// One stack: its layers with their instances (status live from the feed), apps, recent events and
// deployments, and the actions the session's role allows: start/stop an instance (admin), run an
// event or recipes (deployer), clone the stack (admin).

function InstanceRow(props: {
  stack: string;
  instance: InstanceSummary;
  admin: boolean;
  /** its start or stop is being asked for */
  busy: boolean;
  act: (name: string, kind: "start" | "stop") => Promise<void>;
}) {
  const { instance: i, stack } = props;
  const agent = i.agent;
  return html`<tr>
    <th scope="row"><${Link} href=${`/stacks/${seg(stack)}/instances/${seg(i.name)}`}>${i.name}<//></th>
    <td data-status=${i.status}><${StatusBadge} status=${i.status} />${
      i.inService ? null : html` <span class="muted">(out of service)</span>`
    }</td>
    ${
      props.admin
        ? html`<td class="row-actions">
            ${
              canStart(i.status)
                ? html`<button type="button" disabled=${props.busy} onClick=${() => props.act(i.name, "start")}>Start ${i.name}</button>`
                : null
            }
            ${
              canStop(i.status)
                ? html`<${ConfirmButton} label=${`Stop ${i.name}`} disabled=${props.busy}
                    question=${`Stop ${i.name}? It runs shutdown and its host stops.`}
                    onConfirm=${() => props.act(i.name, "stop")} />`
                : null
            }
          </td>`
        : null
    }
    <td>${i.address ?? html`<span class="muted">—</span>`}</td>
    <td>${i.transport}</td>
    <td>${
      agent === null
        ? html`<span class="muted">no agent</span>`
        : html`${agent.connected ? "connected" : "not connected"}${agent.lastSeenAt === undefined || agent.lastSeenAt === null ? null : html`, <${Time} at=${agent.lastSeenAt} />`}`
    }</td>
    <td>${i.scaling}</td>
  </tr>`;
}

function Layers(props: {
  summary: StackSummary;
  admin: boolean;
  pending: ReadonlySet<string>;
  act: (name: string, kind: "start" | "stop") => Promise<void>;
}) {
  const { summary, admin } = props;
  const byName = new Map(summary.instances.map((i) => [i.name, i]));
  // the actions beside the status: in view on a narrow screen too, where the rest scrolls sideways
  const head = [
    "Instance",
    "Status",
    ...(admin ? ["Actions"] : []),
    "Address",
    "Transport",
    "Agent last seen",
    "Scaling",
  ];
  const inLayers = new Set(summary.layers.flatMap((l) => l.instances));
  const others = summary.instances.filter((i) => !inLayers.has(i.name));
  const table = (caption: string, instances: InstanceSummary[]) =>
    html`<${Table} caption=${caption} head=${head} class="instances">
      ${
        instances.length === 0
          ? html`<tr><td colspan=${head.length} class="muted">No instances</td></tr>`
          : instances.map(
              (i) =>
                html`<${InstanceRow} key=${i.name} stack=${summary.name} instance=${i} admin=${admin}
                busy=${props.pending.has(i.name)} act=${props.act} />`,
            )
      }
    <//>`;
  return html`<section aria-labelledby="layers-title">
    <h2 id="layers-title">Layers and instances</h2>
    ${summary.layers.map((l) =>
      table(
        `Layer ${l.name}`,
        l.instances.flatMap((n) => byName.get(n) ?? []),
      ),
    )}
    ${others.length > 0 ? table("Instances in no layer", others) : null}
  </section>`;
}

function Apps(props: { summary: StackSummary }) {
  const { summary } = props;
  return html`<section aria-labelledby="apps-title">
    <div class="section-head">
      <h2 id="apps-title">Apps</h2>
      <${Link} href=${`/stacks/${seg(summary.name)}/deployments`}>Deployments<//>
    </div>
    ${
      summary.apps.length === 0
        ? html`<p class="muted">No apps.</p>`
        : html`<${Table} caption="Apps" head=${["App", "Layers", "Source", "Deployed", "Status"]}>
            ${summary.apps.map(
              (app) => html`<tr>
                <th scope="row">${app.name}</th>
                <td>${app.layers.join(", ")}</td>
                <td>${app.source === null ? html`<span class="muted">—</span>` : app.source.type}</td>
                <td>${
                  app.deployed === null
                    ? html`<span class="muted">not deployed</span>`
                    : html`<${Link} href=${`/deployments/${app.deployed.id}`}>#${app.deployed.id}<//> ${app.deployed.requested}${" "}
                        <code>${app.deployed.revision.slice(0, 10)}</code>`
                }</td>
                <td>${app.deployed === null ? "—" : html`<${StatusBadge} status=${app.deployed.status} />`}${
                  app.ab === null
                    ? null
                    : html` <${Link} class="tag" href=${`/deployments/${app.ab.deployment}`}
                        >A/B: B (#${app.ab.deployment}) on ${app.ab.instances.join(", ")}<//>`
                }</td>
              </tr>`,
            )}
          <//>`
    }
  </section>`;
}

function Recent(props: { summary: StackSummary }) {
  const { summary } = props;
  return html`<section aria-labelledby="recent-title">
    <h2 id="recent-title">Recent activity</h2>
    <${Table} caption="Recent events" head=${["Event", "Kind", "Status", "Created"]}>
      ${
        summary.events.length === 0
          ? html`<tr><td colspan="4" class="muted">No events yet</td></tr>`
          : summary.events.map(
              (e) => html`<tr>
                <th scope="row"><${Link} href=${`/events/${e.id}`}>#${e.id}<//></th>
                <td>${e.kind}</td>
                <td><${StatusBadge} status=${e.status} /></td>
                <td><${Time} at=${e.createdAt} /></td>
              </tr>`,
            )
      }
    <//>
    <${Table} caption="Recent deployments" head=${["Deployment", "App", "Revision", "Strategy", "Status", "By", "Created"]}>
      ${
        summary.deployments.length === 0
          ? html`<tr><td colspan="7" class="muted">No deployments yet</td></tr>`
          : summary.deployments.map(
              (d) => html`<tr>
                <th scope="row"><${Link} href=${`/deployments/${d.id}`}>#${d.id}<//></th>
                <td>${d.app}</td>
                <td>${d.requested} <code>${d.revision.slice(0, 10)}</code></td>
                <td>${d.strategy}</td>
                <td><${StatusBadge} status=${d.status} /></td>
                <td>${d.user}</td>
                <td><${Time} at=${d.createdAt} /></td>
              </tr>`,
            )
      }
    <//>
  </section>`;
}

/** The stack page. */
export default function StackPage(props: PageProps) {
  const stack = props.params.stack ?? "";
  useTitle(stack);
  // a stack that is not there (or not this session's) has no feed to follow
  const [gone, setGone] = useState(false);
  const feed = useFeed({
    stack,
    enabled: !gone,
    kinds: ["stack", "instance", "state", "event", "deployment", "agent", "outcome"],
    onEntries: (entries) => {
      // an instance's status applies at once; anything else reads the summary again (at most once a second)
      let next = summary.data;
      let stale = next === undefined;
      for (const entry of entries) {
        if (next === undefined) break;
        const applied = applyEntry(next, entry);
        if (applied === undefined) stale = true;
        else next = applied;
      }
      if (next !== summary.data) summary.set(() => next);
      if (stale) refresh(stack);
    },
  });
  const summary = useAsync(
    () => api.get<StackSummary>(`/v1/stacks/${seg(stack)}/summary`),
    [stack],
    feed.ready,
  );
  useEffect(() => {
    const error = summary.error;
    setGone(error instanceof ApiError && (error.status === 404 || error.status === 403));
  }, [summary.error]);
  const refresh = useCoalesced(() => void summary.reload(), 1000);
  const [action, setAction] = useState<Outcome | undefined>(undefined);
  const [pending, setPending] = useState<ReadonlySet<string>>(new Set());
  const act = async (name: string, kind: "start" | "stop") => {
    setAction(undefined);
    setPending((p) => new Set([...p, name]));
    try {
      // 202 { id }: an event started; 200 { id: null, exitCode }: there was nothing to run
      const answer = await api.post<{ id: number | null; exitCode?: number }>(
        `/v1/stacks/${seg(stack)}/instances/${seg(name)}/${kind}`,
        { wait: false },
      );
      if (answer.id === null) {
        setAction({ text: `${kind === "start" ? "Start" : "Stop"} ${name}: nothing to do (no event ran).` });
        refresh(stack);
      } else
        setAction({
          text: `${kind === "start" ? "Starting" : "Stopping"} ${name}: event #${answer.id}.`,
          href: `/events/${answer.id}`,
        });
    } catch (error) {
      setAction({ error });
    } finally {
      setPending((p) => new Set([...p].filter((n) => n !== name)));
    }
  };
  const data = summary.data;
  const admin = can(stack, "admin");
  const deployer = can(stack, "deployer");
  return html`<div class="page-head">
      <h1>${stack}</h1>
      ${gone ? null : html`<${LiveState} state=${feed.state} />`}
    </div>
    ${
      data === undefined
        ? null
        : html`<p class="meta">
          ${data.file} · ${data.stateVersion === null ? "no state yet" : html`state version <span class="state-version">${data.stateVersion}</span>`}
        </p>`
    }
    <${ErrorBox} error=${summary.error} title="The stack could not be read" />
    ${
      data?.invalid === undefined
        ? null
        : html`<${ErrorBox} error=${new ApiError(422, data.invalid.code, data.invalid.message)}
            title="The stack file does not load (shown: the stack as last applied)" />`
    }
    ${
      data === undefined
        ? summary.error === undefined
          ? html`<${Loading} what=${`stack ${stack}`} />`
          : null
        : html`
          <div aria-live="polite"><${OutcomeLine} outcome=${action} /></div>
          <${Layers} summary=${data} admin=${admin} pending=${pending} act=${act} />
          <${Apps} summary=${data} />
          ${
            deployer || admin
              ? html`<section aria-labelledby="actions-title">
                  <h2 id="actions-title">Actions</h2>
                  <div class="forms">
                    ${deployer ? html`<${EventForm} summary=${data} />` : null}
                    ${deployer ? html`<${RecipesForm} summary=${data} />` : null}
                    ${admin ? html`<${CloneForm} summary=${data} />` : null}
                  </div>
                </section>`
              : null
          }
          <${Recent} summary=${data} />`
    }`;
}
