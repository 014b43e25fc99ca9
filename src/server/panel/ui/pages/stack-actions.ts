import { html } from "htm/preact";
import { useState } from "preact/hooks";
import { api, seg } from "../api.ts";
import { Field, type Outcome, OutcomeLine } from "../components.ts";
import type { StackSummary } from "../types.ts";

// The stack page's forms: run an event, run recipes (deployers), clone the stack (admins). Each
// says what it started, with a link to follow it, or why it was refused.

const events = ["setup", "configure", "deploy", "undeploy", "shutdown"] as const;

/** Runs a lifecycle event on the stack's online instances (all, or one layer's). */
export function EventForm(props: { summary: StackSummary }) {
  const { summary } = props;
  const [kind, setKind] = useState<string>("configure");
  const [layer, setLayer] = useState("");
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setOutcome(undefined);
    try {
      const body: Record<string, unknown> = { kind };
      if (layer !== "") body.layer = layer;
      const { id } = await api.post<{ id: number }>(`/v1/stacks/${seg(summary.name)}/events`, body);
      setOutcome({ text: `Event #${id} (${kind}) started.`, href: `/events/${id}` });
    } catch (error) {
      setOutcome({ error });
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" aria-labelledby="run-event-title" onSubmit=${submit}>
    <h3 id="run-event-title">Run an event</h3>
    <div class="row">
      <${Field} label="Event" id="run-event-kind">
        <select id="run-event-kind" value=${kind} onChange=${(e: Event) => setKind((e.target as HTMLSelectElement).value)}>
          ${events.map((k) => html`<option value=${k}>${k}</option>`)}
        </select>
      <//>
      <${Field} label="Layer" id="run-event-layer">
        <select id="run-event-layer" value=${layer} onChange=${(e: Event) => setLayer((e.target as HTMLSelectElement).value)}>
          <option value="">All layers</option>
          ${summary.layers.map((l) => html`<option value=${l.name}>${l.name}</option>`)}
        </select>
      <//>
    </div>
    <button type="submit" disabled=${busy}>Run event</button>
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
  </form>`;
}

/** Runs named recipes on the stack's online instances (all, or one layer's). */
export function RecipesForm(props: { summary: StackSummary }) {
  const { summary } = props;
  const [recipes, setRecipes] = useState("");
  const [layer, setLayer] = useState("");
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setOutcome(undefined);
    try {
      const list = recipes.split(/[\s,]+/).filter((r) => r !== "");
      const body: Record<string, unknown> = { kind: "run-recipes", recipes: list };
      if (layer !== "") body.layer = layer;
      const { id } = await api.post<{ id: number }>(`/v1/stacks/${seg(summary.name)}/events`, body);
      setOutcome({ text: `Event #${id} (run-recipes ${list.join(", ")}) started.`, href: `/events/${id}` });
    } catch (error) {
      setOutcome({ error });
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" aria-labelledby="run-recipes-title" onSubmit=${submit}>
    <h3 id="run-recipes-title">Run recipes</h3>
    <div class="row">
      <${Field} label="Recipes" id="run-recipes-list" hint="COOKBOOK::RECIPE, separated by spaces or commas">
        <input id="run-recipes-list" aria-describedby="run-recipes-list-hint" required spellcheck="false" placeholder="web::configure"
          value=${recipes} onInput=${(e: Event) => setRecipes((e.target as HTMLInputElement).value)} />
      <//>
      <${Field} label="On layer" id="run-recipes-layer">
        <select id="run-recipes-layer" value=${layer} onChange=${(e: Event) => setLayer((e.target as HTMLSelectElement).value)}>
          <option value="">All layers</option>
          ${summary.layers.map((l) => html`<option value=${l.name}>${l.name}</option>`)}
        </select>
      <//>
    </div>
    <button type="submit" disabled=${busy}>Run recipes</button>
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
  </form>`;
}

/** Clones the stack under a new name (its own stack file; instances stopped). */
export function CloneForm(props: { summary: StackSummary }) {
  const [name, setName] = useState("");
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setOutcome(undefined);
    try {
      const made = await api.post<{ name: string; file: string }>(
        `/v1/stacks/${seg(props.summary.name)}/clone`,
        {
          name: name.trim(),
        },
      );
      setOutcome({ text: `Stack ${made.name} made (${made.file}).`, href: `/stacks/${seg(made.name)}` });
      setName("");
    } catch (error) {
      setOutcome({ error });
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card" aria-labelledby="clone-title" onSubmit=${submit}>
    <h3 id="clone-title">Clone</h3>
    <${Field} label="New stack name" id="clone-name" hint="the copy gets its own stack file; its instances start stopped">
      <input id="clone-name" aria-describedby="clone-name-hint" required spellcheck="false" pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]*"
        value=${name} onInput=${(e: Event) => setName((e.target as HTMLInputElement).value)} />
    <//>
    <button type="submit" disabled=${busy}>Clone stack</button>
    <div aria-live="polite"><${OutcomeLine} outcome=${outcome} /></div>
  </form>`;
}
