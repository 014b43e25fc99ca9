import { html } from "htm/preact";
import { ApiError, api, seg } from "../api.ts";
import { ErrorBox, Link, LiveState, Loading, StatusBadge, Time, useAsync, useTitle } from "../components.ts";
import { overviewOf } from "../live.ts";
import type { PageProps } from "../router.ts";
import { useCoalesced, useFeed } from "../stream.ts";
import type { Overview, StackOverview, StackSummary } from "../types.ts";

// The stacks page: every stack the session may view, with its layers, instances by status, apps
// and their deployed revisions and the last events. Live: a stack's card is read again (at most
// once a second) when the feed says it changed.

function layerCount(instances: string[] | number): number {
  return typeof instances === "number" ? instances : instances.length;
}

function StackCard(props: { stack: StackOverview }) {
  const { stack } = props;
  const counts = Object.entries(stack.counts).filter(([, n]) => n > 0);
  const headingId = `stack-${stack.name}`;
  return html`<section class="card stack-card" aria-labelledby=${headingId}>
    <h2 id=${headingId}><${Link} href=${`/stacks/${seg(stack.name)}`}>${stack.name}<//></h2>
    <p class="meta">${stack.file} · ${stack.stateVersion === null ? "no state yet" : `state version ${stack.stateVersion}`}</p>
    ${stack.invalid === undefined ? null : html`<${ErrorBox} error=${new ApiError(422, stack.invalid.code, stack.invalid.message)} title="The stack file is invalid" />`}
    <dl class="facts">
      <div>
        <dt>Layers</dt>
        <dd>${
          stack.layers.length === 0
            ? "none"
            : stack.layers.map(
                (l, i) =>
                  html`${i > 0 ? ", " : ""}${l.name} <span class="muted">(${layerCount(l.instances)})</span>`,
              )
        }</dd>
      </div>
      <div>
        <dt>Instances</dt>
        <dd>${
          counts.length === 0
            ? "none"
            : html`<ul class="inline">${counts.map(
                ([status, n]) =>
                  html`<li><${StatusBadge} status=${status} label=${`${n} ${status.replaceAll("_", " ")}`} /></li>`,
              )}</ul>`
        }</dd>
      </div>
      <div>
        <dt>Apps</dt>
        <dd>${
          stack.apps.length === 0
            ? "none"
            : html`<ul class="plain lines">${stack.apps.map(
                (app) => html`<li>
                  <strong>${app.name}</strong>${" "}
                  ${
                    app.deployed === null
                      ? html`<span class="muted">not deployed</span>`
                      : html`<${Link} href=${`/deployments/${app.deployed.id}`}>${app.deployed.requested}${" "}
                            <code>${app.deployed.revision.slice(0, 10)}</code><//>
                          ${" "}<${StatusBadge} status=${app.deployed.status} />`
                  }
                </li>`,
              )}</ul>`
        }</dd>
      </div>
      <div>
        <dt>Last events</dt>
        <dd>${
          stack.events.length === 0
            ? "none"
            : html`<ul class="plain lines">${stack.events.map(
                (e) => html`<li>
                  <${Link} href=${`/events/${e.id}`}>#${e.id} ${e.kind}<//> <${StatusBadge} status=${e.status} />
                  <${Time} at=${e.createdAt} />
                </li>`,
              )}</ul>`
        }</dd>
      </div>
    </dl>
  </section>`;
}

/** The stacks page. */
export default function StacksPage(_props: PageProps) {
  useTitle("Stacks");
  const feed = useFeed({
    kinds: ["stack", "instance", "state", "event", "deployment", "agent"],
    onEntries: (entries) => {
      for (const entry of entries) refresh(entry.stack);
    },
  });
  const overview = useAsync(() => api.get<Overview>("/v1/overview"), [], feed.ready);
  const refresh = useCoalesced(async (stacks: string[]) => {
    const known = new Set(overview.data?.stacks.map((s) => s.name));
    if (stacks.some((s) => !known.has(s))) return overview.reload();
    for (const name of stacks) {
      try {
        const summary = await api.get<StackSummary>(`/v1/stacks/${seg(name)}/summary`);
        const card = overviewOf(summary);
        overview.set((data) => data && { stacks: data.stacks.map((s) => (s.name === name ? card : s)) });
      } catch {
        await overview.reload(); // gone, or not readable now: the list as the server has it
        return;
      }
    }
  }, 1000);
  const stacks = overview.data?.stacks;
  return html`<div class="page-head">
      <h1>Stacks</h1>
      <${LiveState} state=${feed.state} />
    </div>
    <${ErrorBox} error=${overview.error} title="The stacks could not be read" />
    ${
      stacks === undefined
        ? overview.error === undefined
          ? html`<${Loading} what="the stacks" />`
          : null
        : stacks.length === 0
          ? html`<p>No stacks you may view. Stack files live in the kitchen's <code>stacks/</code> folder.</p>`
          : html`<div class="cards">${stacks.map((s) => html`<${StackCard} key=${s.name} stack=${s} />`)}</div>`
    }`;
}
