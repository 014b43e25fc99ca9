import { html } from "htm/preact";
import { api, can } from "../api.ts";
import { ErrorBox, Field, Loading, StatusBadge, Table, Time, useAsync, useTitle } from "../components.ts";
import { navigate, type PageProps } from "../router.ts";
import type { Overview } from "../types.ts";

// The audit log, newest first: who did what to which stack, allowed or refused. Filtered by stack
// and outcome (kept in the address, so a filtered view can be linked); the whole log across stacks
// is for admins of every stack, others choose one of their stacks.

/** One audit entry (store AuditRecord). */
interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  stack?: string | undefined;
  target?: string | undefined;
  outcome: string;
  reason?: string | undefined;
  detail?: unknown;
}

const outcomes = ["ok", "refused", "auto"] as const;

/** The audit API's query for the page's filters (an unknown outcome is left out). */
export function auditQuery(stack: string, outcome: string, limit = 200): string {
  const query = new URLSearchParams();
  if (stack !== "") query.set("stack", stack);
  if ((outcomes as readonly string[]).includes(outcome)) query.set("outcome", outcome);
  query.set("limit", String(limit));
  return query.toString();
}

/** The page /audit. */
export default function AuditPage(props: PageProps) {
  useTitle("Audit log");
  const everything = can(undefined, "admin");
  const overview = useAsync(() => api.get<Overview>("/v1/overview"), []);
  const stacks = (overview.data?.stacks ?? []).map((s) => s.name);
  const asked = props.query.get("stack") ?? "";
  const outcome = props.query.get("outcome") ?? "";
  // without an admin grant on every stack, the log is read one stack at a time
  const stack = asked !== "" || everything ? asked : (stacks[0] ?? "");
  const ready = everything || stack !== "";
  const entries = useAsync(
    () => api.get<AuditEntry[]>(`/v1/audit?${auditQuery(stack, outcome)}`),
    [stack, outcome],
    ready,
  );
  const choose = (name: "stack" | "outcome") => (event: Event) => {
    const value = (event.currentTarget as HTMLSelectElement).value;
    const query = new URLSearchParams({ stack, outcome, [name]: value });
    for (const [key, v] of [...query.entries()]) if (v === "") query.delete(key);
    const text = query.toString();
    navigate(text === "" ? "/audit" : `/audit?${text}`, { replace: true });
  };
  const rows = entries.data ?? [];
  return html`<h1>Audit log</h1>
    <form class="filters" aria-label="Filters" onSubmit=${(e: Event) => e.preventDefault()}>
      <${Field} label="Stack" id="audit-stack">
        <select id="audit-stack" value=${stack} onChange=${choose("stack")}>
          ${everything ? html`<option value="">Every stack</option>` : null}
          ${stacks.map((name) => html`<option value=${name}>${name}</option>`)}
          ${stack !== "" && !stacks.includes(stack) ? html`<option value=${stack}>${stack}</option>` : null}
        </select>
      <//>
      <${Field} label="Outcome" id="audit-outcome">
        <select id="audit-outcome" value=${outcome} onChange=${choose("outcome")}>
          <option value="">Any</option>
          ${outcomes.map((o) => html`<option value=${o}>${o}</option>`)}
        </select>
      <//>
      <button type="button" onClick=${() => void entries.reload()} disabled=${!ready}>Refresh</button>
    </form>
    <${ErrorBox} error=${overview.error} title="Stacks not loaded" />
    <${ErrorBox} error=${entries.error} title="Audit log not loaded" />
    ${
      !ready
        ? overview.loading
          ? html`<${Loading} what="the stacks" />`
          : html`<p>No stack to show the audit log of.</p>`
        : entries.data === undefined
          ? entries.error
            ? null
            : html`<${Loading} what="the audit log" />`
          : rows.length === 0
            ? html`<p>No entries.</p>`
            : html`<${Table} caption=${`Audit entries${stack ? ` of ${stack}` : ""}`}
                head=${["When", "Who", "Action", "Stack", "Target", "Outcome", "Why"]}>
                ${rows.map(
                  (a) => html`<tr>
                    <td><${Time} at=${a.at} /></td>
                    <td>${a.actor}</td>
                    <td>${a.action}</td>
                    <td>${a.stack ?? "—"}</td>
                    <td>${a.target ?? "—"}</td>
                    <td data-status=${a.outcome}><${StatusBadge} status=${a.outcome} /></td>
                    <td>${a.reason ?? ""}</td>
                  </tr>`,
                )}
              <//>`
    }`;
}
