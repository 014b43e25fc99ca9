import { html } from "htm/preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, api, can, seg } from "../api.ts";
import {
  ConfirmButton,
  ErrorBox,
  LiveState,
  Link,
  Loading,
  StatusBadge,
  Time,
  useAsync,
  useTitle,
} from "../components.ts";
import {
  type Batch,
  batchesOf,
  type PhaseProgress,
  paramsText,
  phaseOf,
  type Step,
  stepOf,
  withStep,
} from "../deploy-progress.ts";
import type { FeedEntry } from "../feed-cursor.ts";
import { LogView, useLogModel } from "../log-view.ts";
import { Crumbs, Facts } from "../parts.ts";
import { navigate, type PageProps } from "../router.ts";
import { useCoalesced, useFeed } from "../stream.ts";
import type { DeploymentRecord } from "../types.ts";

// One deployment as it happens: its status, its batches with each instance's current phase, and
// its log, all live from the stack's feed (subject deployment:ID). The record is read again once
// the stream's start is fixed, and every entry since is applied on top of it, so nothing between
// the two is missed. Deployers can roll back to it (any recorded deployment) or resume it when its
// process left it interrupted.

/** GET /v1/deployments/:id. */
interface DeploymentAnswer {
  deployment: DeploymentRecord & { steps: Step[]; note?: string | undefined; bundle?: string | undefined };
  action?: { status: string; error?: { code: string; message: string; hint?: string } } | undefined;
}

/** What the page shows: the record with the feed applied. */
interface Live {
  deployment: DeploymentAnswer["deployment"];
  progress: Map<string, PhaseProgress>;
}

/** The statuses a deployment ends with. */
const finished = new Set(["succeeded", "failed", "rolled_back", "interrupted"]);

/** Applies feed entries (deployment, step, phase) to a deployment in order. */
export function applyEntries(live: Live, entries: readonly FeedEntry[]): Live {
  let { deployment, progress } = live;
  for (const entry of entries) {
    if (entry.kind === "deployment") {
      const data = entry.data as Partial<DeploymentRecord> | null;
      if (data && typeof data.status === "string") {
        deployment = { ...deployment, status: data.status };
        // its end: the time is the entry's (the record, read again, has the note too)
        if (finished.has(data.status) && !deployment.finishedAt) deployment.finishedAt = entry.at;
      }
    } else if (entry.kind === "step") {
      const step = stepOf(entry.data);
      if (step) {
        deployment = { ...deployment, steps: withStep(deployment.steps, step) };
        // the progress shown is within the step under way: a new step starts without
        if (progress.has(step.instance)) {
          progress = new Map(progress);
          progress.delete(step.instance);
        }
      }
    } else if (entry.kind === "phase" && stepOf(entry.data) === undefined) {
      // a runner's progress (connecting, converging 3 of 12 …); its phase entries of steps (they
      // have a batch) repeat the store's step entries, later (batched): they are left out
      const phase = phaseOf(entry.data);
      if (phase) progress = new Map(progress).set(phase.instance, phase);
    }
  }
  return { deployment, progress };
}

function BatchView(props: { batch: Batch; stack: string }) {
  const { batch, stack } = props;
  const heading = `batch-${batch.number}`;
  return html`<section class="batch" aria-label=${`Batch ${batch.number}`}>
    <h3 id=${heading}>Batch ${batch.number}</h3>
    <div class="table-wrap">
      <table aria-labelledby=${heading}>
        <thead>
          <tr><th scope="col">Instance</th><th scope="col">Phase</th><th scope="col">Status</th></tr>
        </thead>
        <tbody>
          ${batch.instances.map(
            (i) => html`<tr>
              <td><${Link} href=${`/stacks/${seg(stack)}/instances/${seg(i.instance)}`}>${i.instance}<//></td>
              <td class="phase" data-phase=${i.phase}>${i.words}${
                i.progress ? html` <small class="progress">(${i.progress})</small>` : null
              }</td>
              <td data-status=${i.status}><${StatusBadge} status=${i.status} /></td>
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
  </section>`;
}

function Actions(props: { deployment: DeploymentAnswer["deployment"] }) {
  const { deployment } = props;
  const [error, setError] = useState<unknown>(undefined);
  const act = async (path: "rollback" | "resume") => {
    setError(undefined);
    try {
      const { id } = await api.post<{ id: number }>(`/v1/deployments/${deployment.id}/${path}`, {});
      navigate(`/deployments/${id}`, id === deployment.id ? { replace: true } : {});
    } catch (e) {
      setError(e);
    }
  };
  if (!can(deployment.stack, "deployer")) return null;
  return html`<div class="actions">
    <${ConfirmButton}
      label="Roll back to this deployment"
      question=${`Deploy ${deployment.app} again as deployment #${deployment.id} left it (${deployment.requested})?`}
      onConfirm=${() => act("rollback")}
    />
    ${
      deployment.status === "interrupted"
        ? html`<${ConfirmButton}
            label="Resume this deployment"
            question="Finish what this deployment left undone?"
            onConfirm=${() => act("resume")}
          />`
        : null
    }
    <${ErrorBox} error=${error} title="Not started" />
  </div>`;
}

function Summary(props: { deployment: DeploymentAnswer["deployment"] }) {
  const d = props.deployment;
  const params = paramsText(d.params ?? {});
  return html`<${Facts}
    items=${[
      ["App", html`<${Link} href=${`/stacks/${seg(d.stack)}/deployments`}>${d.app}<//> in stack ${d.stack}`],
      ["Revision", html`${d.requested} <code title=${d.revision}>${d.revision.slice(0, 12)}</code>`],
      ["Strategy", `${d.strategy}${params ? ` (${params})` : ""}`],
      [
        "Rollback to",
        d.rollbackOf
          ? html`<${Link} href=${`/deployments/${d.rollbackOf}`}>deployment #${d.rollbackOf}<//>`
          : null,
      ],
      ["By", d.user],
      ["Created", html`<${Time} at=${d.createdAt} />`],
      ["Started", html`<${Time} at=${d.startedAt} empty="not yet" />`],
      ["Finished", html`<${Time} at=${d.finishedAt} empty="not yet" />`],
    ]}
  />`;
}

/** The page /deployments/:id. */
export default function DeploymentPage(props: PageProps) {
  const id = props.params.id ?? "";
  useTitle(`Deployment #${id}`);
  const record = useAsync(() => api.get<DeploymentAnswer>(`/v1/deployments/${seg(id)}`), [id]);
  const stack = record.data?.deployment.stack;
  const subject = `deployment:${id}`;
  const model = useLogModel(stack, subject);
  // every entry since the stream's start, applied again on each fresh read of the record
  const seen = useRef<FeedEntry[]>([]);
  const [live, setLive] = useState<Live | undefined>(undefined);
  const reloadSoon = useCoalesced(() => void record.reload(), 100);
  const feed = useFeed({
    stack,
    subject,
    kinds: ["deployment", "step", "phase", "log"],
    enabled: stack !== undefined,
    onEntries: (entries) => {
      const state = entries.filter((e) => e.kind !== "log");
      model?.append(entries.filter((e) => e.kind === "log"));
      if (state.length === 0) return;
      // the record's own changes, kept to apply again on a fresh read (a runner's progress is not
      // in the record: it lives only in the page's state, and is not kept here)
      seen.current.push(...state.filter((e) => e.kind !== "phase"));
      setLive((current) => (current ? applyEntries(current, state) : current));
      // the end: its note and times are in the record
      if (
        state.some(
          (e) => e.kind === "deployment" && finished.has(String((e.data as { status?: unknown })?.status)),
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
        ...applyEntries({ deployment: data.deployment, progress: new Map() }, seen.current),
        progress: current?.progress ?? new Map(),
      }));
  }, [record.data]);
  const batches = useMemo(() => (live ? batchesOf(live.deployment.steps, live.progress) : []), [live]);
  if (live === undefined)
    return html`<h1>Deployment #${id}</h1>
      ${record.error ? html`<${ErrorBox} error=${record.error} title="Deployment not loaded" />` : html`<${Loading} what="the deployment" />`}`;
  const d = live.deployment;
  const error = record.data?.action?.error;
  return html`<${Crumbs}
      trail=${[
        ["Stacks", "/"],
        [d.stack, `/stacks/${seg(d.stack)}`],
        ["Deployments", `/stacks/${seg(d.stack)}/deployments`],
        [`#${d.id}`],
      ]}
    />
    <div class="page-head">
      <h1>Deployment #${d.id}</h1>
      <p class="deployment-status" role="status" aria-live="polite">
        ${d.app}: <${StatusBadge} status=${d.status} />${d.note ? html` <span class="note">${d.note}</span>` : null}
      </p>
      <${LiveState} state=${feed.state} />
    </div>
    ${
      error
        ? html`<${ErrorBox} error=${new ApiError(0, error.code, error.message, error.hint)} title="Its run on the server failed" />`
        : null
    }
    <${Summary} deployment=${d} />
    <${Actions} deployment=${d} />
    <section class="batches" aria-labelledby="batches-heading">
      <h2 id="batches-heading">Batches</h2>
      ${
        batches.length === 0
          ? html`<p>No step yet${finished.has(d.status) ? "" : ": the deployment is starting"}.</p>`
          : batches.map((b) => html`<${BatchView} key=${b.number} batch=${b} stack=${d.stack} />`)
      }
    </section>
    <section class="log-section" aria-labelledby="log-heading">
      <h2 id="log-heading">Log</h2>
      ${model ? html`<${LogView} model=${model} label="Deployment log" />` : null}
    </section>
    <${ErrorBox} error=${record.error} title="Deployment not read again" />`;
}
