import { html } from "htm/preact";
import { useEffect, useState } from "preact/hooks";
import { api, can, seg } from "../api.ts";
import {
  ErrorBox,
  Field,
  LiveState,
  Link,
  Loading,
  StatusBadge,
  Table,
  Time,
  useAsync,
  useTitle,
} from "../components.ts";
import { Crumbs } from "../parts.ts";
import type { PageProps } from "../router.ts";
import { navigate } from "../router.ts";
import { deployBody, strategies } from "../deploy-request.ts";
import { useCoalesced, useFeed } from "../stream.ts";
import type { DeploymentRecord, StackSummary } from "../types.ts";

// A stack's deployments, per app, newest first; for deployers the Deploy form (with a Preview of
// the batches the plan makes) and the end of an A/B deployment under way. Live: a deployment
// recorded or finished anywhere (the CLI too) reloads its app's list.

type App = Omit<StackSummary["apps"][number], "ab" | "source"> & {
  source: { type: string } | null;
  ab: AbStatus | null;
};

/** What POST /v1/stacks/:stack/deployments with plan: true answers (deploy/controller.ts DeploymentPlan). */
interface DeploymentPlan {
  app: string;
  revision: string;
  requested: string;
  strategy: string;
  params: Record<string, string>;
  instances: string[];
  plan: {
    batches: string[][];
    prepareFirst: boolean;
    drain: boolean;
    maxFail: number;
    allOrNothing: boolean;
  };
  migrate: boolean;
  loadBalancer?: string | undefined;
}

/** Where an app's A/B stands (GET /v1/stacks/:stack/summary apps[].ab, routes/overview.ts). */
interface AbStatus {
  /** B: the A/B deployment under way */
  deployment: number;
  revision: string;
  requested: string;
  /** A: the deployment the other instances run */
  base: number | null;
  /** the instances that run B */
  instances: string[];
  share: string | null;
  expected: string | null;
  weights: Record<string, number>;
}

function DeployForm(props: { stack: string; apps: readonly App[] }) {
  const { stack, apps } = props;
  const [values, setValues] = useState<Record<string, string>>({
    app: apps[0]?.name ?? "",
    revision: "",
    strategy: "rolling",
    batch: "",
    "max-unavailable": "",
    "max-fail": "",
    ab: "10%",
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [plan, setPlan] = useState<DeploymentPlan | undefined>(undefined);
  const set = (name: string) => (event: Event) => {
    const value = (event.currentTarget as HTMLInputElement | HTMLSelectElement).value;
    setValues((v) => ({ ...v, [name]: value }));
    setPlan(undefined);
  };
  const takes = strategies.find((s) => s.value === values.strategy)?.takes ?? [];
  const url = `/v1/stacks/${seg(stack)}/deployments`;
  const preview = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setPlan((await api.post<{ plan: DeploymentPlan }>(url, { ...deployBody(values), plan: true })).plan);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const { id } = await api.post<{ id: number }>(url, deployBody(values));
      navigate(`/deployments/${id}`);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };
  const sizeField = (name: string, label: string, hint: string) =>
    html`<${Field} label=${label} id=${`deploy-${name}`} hint=${takes.includes(name) ? hint : "not with this strategy"}>
      <input id=${`deploy-${name}`} name=${name} value=${values[name]} onInput=${set(name)}
        disabled=${!takes.includes(name)} inputmode="text" autocomplete="off" placeholder=${takes.includes(name) ? "" : "—"} />
    <//>`;
  return html`<form class="deploy-form" aria-labelledby="deploy-heading" onSubmit=${submit}>
    <h2 id="deploy-heading">Deploy</h2>
    <div class="fields">
      <${Field} label="App" id="deploy-app">
        <select id="deploy-app" name="app" value=${values.app} onChange=${set("app")} required>
          ${apps.map((a) => html`<option value=${a.name}>${a.name}</option>`)}
        </select>
      <//>
      <${Field} label="Revision" id="deploy-revision" hint="a branch, tag or commit; empty: the stack file's">
        <input id="deploy-revision" name="revision" value=${values.revision} onInput=${set("revision")}
          autocomplete="off" spellcheck="false" />
      <//>
      <${Field} label="Strategy" id="deploy-strategy">
        <select id="deploy-strategy" name="strategy" value=${values.strategy} onChange=${set("strategy")}>
          ${strategies.map((s) => html`<option value=${s.value}>${s.label}</option>`)}
        </select>
      <//>
      ${sizeField("batch", "Batch", "instances per batch: 2 or 25%")}
      ${sizeField("max-unavailable", "Max unavailable", "out of service at once: 1 or 10%")}
      ${sizeField("max-fail", "Max fail", "failures allowed before rolling back: 0 or 5%")}
      ${
        values.strategy === "ab"
          ? html`<${Field} label="B's share" id="deploy-ab" hint="the share of instances that get the new revision">
              <input id="deploy-ab" name="ab" value=${values.ab} onInput=${set("ab")} autocomplete="off" />
            <//>`
          : null
      }
    </div>
    <div class="actions">
      <button type="button" onClick=${preview} disabled=${busy || values.app === ""}>Preview</button>
      <button type="submit" class="primary" disabled=${busy || values.app === ""}>Deploy</button>
    </div>
    <${ErrorBox} error=${error} title="Not deployed" />
    ${plan ? html`<${PlanView} plan=${plan} />` : null}
  </form>`;
}

function PlanView(props: { plan: DeploymentPlan }) {
  const { plan } = props;
  const params = Object.entries(plan.params)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  return html`<section class="plan" aria-label="Deployment plan">
    <h3>Plan: ${plan.app} at ${plan.requested}</h3>
    <p>
      Revision <code>${plan.revision.slice(0, 12)}</code>, strategy ${plan.strategy}${params ? ` (${params})` : ""};${" "}
      ${plan.instances.length} ${plan.instances.length === 1 ? "instance" : "instances"}${
        plan.migrate ? "; the migration runs once, before the first switch" : ""
      }${plan.loadBalancer ? `; load balancer: ${plan.loadBalancer}` : ""}.
    </p>
    <ol class="plan-batches">
      ${plan.plan.batches.map((names, i) => html`<li>Batch ${i + 1}: ${names.join(", ")}</li>`)}
    </ol>
    <p class="hint">Nothing was changed: Deploy runs it.</p>
  </section>`;
}

function AbPanel(props: { stack: string; app: string; ab: AbStatus }) {
  const { stack, app, ab } = props;
  const [error, setError] = useState<unknown>(undefined);
  const end = async (which: "promote" | "abort") => {
    setError(undefined);
    try {
      const { id } = await api.post<{ id: number }>(
        `/v1/stacks/${seg(stack)}/apps/${seg(app)}/ab/${which}`,
        {},
      );
      navigate(`/deployments/${id}`);
    } catch (e) {
      setError(e);
    }
  };
  const weights = Object.entries(ab.weights ?? {});
  return html`<section class="ab" aria-label=${`A/B of ${app}`}>
    <h3>A/B under way</h3>
    <p>
      B: <${Link} href=${`/deployments/${ab.deployment}`}>deployment #${ab.deployment}<//> (${ab.requested},${" "}
      <code>${(ab.revision ?? "").slice(0, 12)}</code>) on ${ab.instances?.join(", ") || "no instance"}${
        ab.share ? `, share ${ab.share}` : ""
      }${ab.expected ? ` (the weights give ${ab.expected})` : ""}. A:${" "}
      ${ab.base === null || ab.base === undefined ? "unknown" : html`<${Link} href=${`/deployments/${ab.base}`}>deployment #${ab.base}<//>`}.
    </p>
    ${
      weights.length > 0
        ? html`<p>Weights: ${weights.map(([name, w]) => `${name} ${w}`).join(", ")}</p>`
        : null
    }
    ${
      can(stack, "deployer")
        ? html`<div class="actions">
            <button type="button" onClick=${() => end("promote")}>Promote B</button>
            <button type="button" class="danger" onClick=${() => end("abort")}>Abort A/B</button>
          </div>`
        : null
    }
    <${ErrorBox} error=${error} title="A/B not ended" />
  </section>`;
}

/** Loads again when `version` moves past 0 (the data shown stays until the new one is there). */
function useReload(reload: () => Promise<void>, version: number): void {
  useEffect(() => {
    if (version > 0) void reload();
  }, [version]);
}

function AppDeployments(props: { stack: string; app: App; version: number }) {
  const { stack, app, version } = props;
  const list = useAsync(
    () =>
      api.get<{ deployments: DeploymentRecord[] }>(
        `/v1/stacks/${seg(stack)}/deployments?app=${encodeURIComponent(app.name)}&limit=20`,
      ),
    [stack, app.name],
  );
  useReload(list.reload, version);
  const rows = list.data?.deployments ?? [];
  return html`<section class="app" aria-labelledby=${`app-${app.name}`}>
    <h2 id=${`app-${app.name}`}>${app.name}</h2>
    ${
      app.deployed
        ? html`<p>
            Deployed: <${Link} href=${`/deployments/${app.deployed.id}`}>#${app.deployed.id}<//>${", "}
            ${app.deployed.requested} (<code>${app.deployed.revision.slice(0, 12)}</code>)
          </p>`
        : html`<p>Not deployed yet.</p>`
    }
    ${app.ab ? html`<${AbPanel} stack=${stack} app=${app.name} ab=${app.ab} />` : null}
    <${ErrorBox} error=${list.error} title="Deployments not loaded" />
    ${
      list.data === undefined && list.loading
        ? html`<${Loading} what="deployments" />`
        : rows.length === 0
          ? html`<p>No deployments of ${app.name}.</p>`
          : html`<${Table} caption=${`Deployments of ${app.name}`}
              head=${["Deployment", "Revision", "Strategy", "Status", "By", "When"]}>
              ${rows.map(
                (d) => html`<tr>
                  <td><${Link} href=${`/deployments/${d.id}`}>#${d.id}<//></td>
                  <td><span title=${d.revision}>${d.requested}</span> <code>${d.revision.slice(0, 12)}</code>${
                    d.rollbackOf && !d.requested.startsWith("rollback")
                      ? html` <small>(rollback to #${d.rollbackOf})</small>`
                      : null
                  }</td>
                  <td>${d.strategy}</td>
                  <td data-status=${d.status}><${StatusBadge} status=${d.status} /></td>
                  <td>${d.user}</td>
                  <td><${Time} at=${d.createdAt} /></td>
                </tr>`,
              )}
            <//>`
    }
  </section>`;
}

/** The page /stacks/:stack/deployments. */
export default function DeploymentsPage(props: PageProps) {
  const stack = props.params.stack ?? "";
  useTitle(`Deployments · ${stack}`);
  // a deployment recorded or changed: its app's list (and the A/B panel) load again
  const [versions, setVersions] = useState<Record<string, number>>({});
  const bump = useCoalesced((apps: string[]) => {
    setVersions((v) => {
      const next = { ...v };
      for (const app of apps) next[app] = (next[app] ?? 0) + 1;
      return next;
    });
  }, 300);
  const reloadSummary = useCoalesced(() => void summary.reload(), 1000);
  const feed = useFeed({
    stack,
    kinds: ["deployment"],
    onEntries: (entries) => {
      for (const entry of entries) {
        const app = (entry.data as { app?: unknown } | null)?.app;
        if (typeof app === "string") bump(app);
      }
      reloadSummary("summary");
    },
  });
  const summary = useAsync(
    () => api.get<Omit<StackSummary, "apps"> & { apps: App[] }>(`/v1/stacks/${seg(stack)}/summary`),
    [stack],
    feed.ready,
  );
  const apps = summary.data?.apps ?? [];
  // an app known from its deployments only (no longer in the stack file) cannot be deployed
  const deployable = apps.filter((a) => a.source !== null);
  return html`<${Crumbs} trail=${[["Stacks", "/"], [stack, `/stacks/${seg(stack)}`], ["Deployments"]]} />
    <div class="page-head">
      <h1>Deployments of ${stack}</h1>
      <${LiveState} state=${feed.state} />
    </div>
    <${ErrorBox} error=${summary.error} title="Stack not loaded" />
    ${summary.data === undefined && summary.loading ? html`<${Loading} what="the stack's apps" />` : null}
    ${summary.data !== undefined && apps.length === 0 ? html`<p>The stack has no apps.</p>` : null}
    ${
      deployable.length > 0 && can(stack, "deployer")
        ? html`<${DeployForm} stack=${stack} apps=${deployable} />`
        : null
    }
    ${apps.map(
      (app) =>
        html`<${AppDeployments} key=${app.name} stack=${stack} app=${app} version=${versions[app.name] ?? 0} />`,
    )}`;
}
