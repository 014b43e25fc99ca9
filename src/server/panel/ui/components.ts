import type { ComponentChildren, Ref } from "preact";
import { html } from "htm/preact";
import { useCallback, useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";
import { ApiError } from "./api.ts";
import { relativeTime, statusText, statusTone } from "./format.ts";
import { navigate } from "./router.ts";

// The panel's shared pieces: links that navigate without reloading, statuses (text and colour),
// times, errors, confirmations, labelled fields and tables that scroll on a narrow screen.

/** A link inside the panel: a real <a href> (open in a new tab works) that navigates in place. */
export function Link(props: {
  href: string;
  children?: ComponentChildren;
  class?: string;
  [key: string]: unknown;
}) {
  const { href, children, ...rest } = props;
  const onClick = (event: MouseEvent) => {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(href);
  };
  return html`<a ...${rest} href=${href} onClick=${onClick}>${children}</a>`;
}

/** A status as text with its tone's colour and mark (never colour alone). */
export function StatusBadge(props: { status: string; label?: string }) {
  const tone = statusTone(props.status);
  return html`<span class=${`status tone-${tone}`} data-status=${props.status}
    >${props.label ?? statusText(props.status)}</span
  >`;
}

let ticking: ReturnType<typeof setInterval> | undefined;
const tickers = new Set<() => void>();

/** Re-renders every 30 s (relative times). */
function useTick(): void {
  const [, setTick] = useState(0);
  useEffect(() => {
    const update = () => setTick((n) => n + 1);
    tickers.add(update);
    ticking ??= setInterval(() => {
      for (const t of tickers) t();
    }, 30_000);
    return () => {
      tickers.delete(update);
      if (tickers.size === 0) {
        clearInterval(ticking);
        ticking = undefined;
      }
    };
  }, []);
}

/** A time: relative ("5 minutes ago"), the exact time in its title and datetime. */
export function Time(props: { at: string | undefined | null; empty?: string }) {
  useTick();
  if (props.at === undefined || props.at === null || props.at === "")
    return html`<span>${props.empty ?? "—"}</span>`;
  const date = new Date(props.at);
  const exact = Number.isNaN(date.getTime()) ? props.at : date.toLocaleString();
  return html`<time datetime=${props.at} title=${exact}>${relativeTime(props.at)}</time>`;
}

/** An error for people: the server's message and hint (role=alert: read out when it appears). */
export function ErrorBox(props: { error: unknown; title?: string }) {
  if (props.error === undefined || props.error === null) return null;
  const error = props.error;
  const message = error instanceof Error ? error.message : String(error);
  const code = error instanceof ApiError ? error.code : undefined;
  const hint = error instanceof ApiError ? error.hint : undefined;
  return html`<div class="error" role="alert">
    <p><strong>${props.title ?? "Error"}${code === undefined ? "" : ` (${code})`}:</strong> ${message}</p>
    ${hint === undefined ? null : html`<p class="hint">${hint}</p>`}
  </div>`;
}

/** What an action did: a line with a link to follow it, or its error. */
export type Outcome = { text: string; href?: string } | { error: unknown };

/** An action's outcome (nothing before the first). */
export function OutcomeLine(props: { outcome: Outcome | undefined }) {
  const { outcome } = props;
  if (outcome === undefined) return null;
  if ("error" in outcome) return html`<${ErrorBox} error=${outcome.error} title="Refused" />`;
  return html`<p class="notice">
    ${outcome.text}${outcome.href === undefined ? null : html` <${Link} href=${outcome.href}>Follow it<//>`}
  </p>`;
}

/** "Loading…", announced politely. */
export function Loading(props: { what?: string }) {
  return html`<p class="loading" role="status">Loading${props.what === undefined ? "" : ` ${props.what}`}…</p>`;
}

/**
 * A button that asks first: a click shows the question with "Confirm" and "Cancel" (focus on
 * Confirm; Escape cancels).
 */
export function ConfirmButton(props: {
  label: string;
  question: string;
  onConfirm: () => void | Promise<void>;
  disabled?: boolean;
  class?: string;
}) {
  const [asking, setAsking] = useState(false);
  const confirm = useRef<HTMLButtonElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  // at once after the render (a keyboard user's next key goes to Confirm, not to the body)
  useLayoutEffect(() => {
    if (asking) confirm.current?.focus();
  }, [asking]);
  const close = (refocus: boolean) => {
    setAsking(false);
    if (refocus) setTimeout(() => opener.current?.focus(), 0);
  };
  if (!asking)
    return html`<button type="button" ref=${opener} class=${props.class ?? ""} disabled=${props.disabled === true}
      onClick=${() => setAsking(true)}>${props.label}</button>`;
  return html`<span class="confirm" role="group" aria-label=${props.question}
    onKeyDown=${(e: KeyboardEvent) => e.key === "Escape" && close(true)}>
    <span class="question">${props.question}</span>
    <button type="button" class="danger" ref=${confirm}
      onClick=${() => {
        close(false);
        void props.onConfirm();
      }}>Confirm</button>
    <button type="button" onClick=${() => close(true)}>Cancel</button>
  </span>`;
}

/**
 * A labelled control: pass the control as the child, with `id` equal to this field's `id` (and, with
 * a hint, `aria-describedby` equal to `<id>-hint`).
 */
export function Field(props: { label: string; id: string; hint?: string; children?: ComponentChildren }) {
  return html`<div class="field">
    <label for=${props.id}>${props.label}</label>
    ${props.children}
    ${props.hint === undefined ? null : html`<small class="hint" id=${`${props.id}-hint`}>${props.hint}</small>`}
  </div>`;
}

/** Whether an element's content is wider than the element (it scrolls sideways); follows resizes. */
function useOverflows(): [Ref<HTMLDivElement>, boolean] {
  const ref = useRef<HTMLDivElement>(null);
  const [overflows, setOverflows] = useState(false);
  useLayoutEffect(() => {
    const element = ref.current;
    if (element === null) return;
    const measure = () => setOverflows(element.scrollWidth > element.clientWidth + 1);
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    const inner = element.firstElementChild;
    if (inner !== null) observer.observe(inner);
    return () => observer.disconnect();
  }, []);
  return [ref, overflows];
}

/**
 * A table that scrolls sideways on a narrow screen; then (only then) its wrapper is a labelled,
 * focusable region, so that keys scroll it too.
 */
export function Table(props: {
  caption: string;
  head: readonly string[];
  children?: ComponentChildren;
  class?: string;
}) {
  const [ref, overflows] = useOverflows();
  const region = overflows ? { role: "region", "aria-label": props.caption, tabindex: "0" } : {};
  return html`<div class="table-wrap" ref=${ref} ...${region}>
    <table class=${props.class ?? ""}>
      <caption>${props.caption}</caption>
      <thead><tr>${props.head.map((h) => html`<th scope="col">${h}</th>`)}</tr></thead>
      <tbody>${props.children}</tbody>
    </table>
  </div>`;
}

/** Sets the document's title ("<title> · Galley"). */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title === "" ? "Galley" : `${title} · Galley`;
  }, [title]);
}

/** The result of an async load: data, error, loading, and reload(). */
export interface AsyncState<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => Promise<void>;
  /** replaces the data (a live update) */
  set: (update: (data: T | undefined) => T | undefined) => void;
}

/**
 * Loads `load()` when `ready` (and again when `deps` change); keeps the last data while reloading.
 *
 * @example const summary = useAsync(() => api.get<StackSummary>(`/v1/stacks/${seg(stack)}/summary`), [stack], feed.ready)
 */
export function useAsync<T>(load: () => Promise<T>, deps: readonly unknown[], ready = true): AsyncState<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const latest = useRef(load);
  latest.current = load;
  const generation = useRef(0);
  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    try {
      const value = await latest.current();
      if (mine !== generation.current) return;
      setData(() => value);
      setError(undefined);
    } catch (e) {
      if (mine === generation.current) setError(e);
    } finally {
      if (mine === generation.current) setLoading(false);
    }
  }, []);
  useEffect(() => {
    if (ready) void reload();
  }, [...deps, ready]);
  useEffect(() => {
    setData(undefined);
  }, deps);
  return { data, error, loading, reload, set: (update) => setData((d) => update(d)) };
}

/** A live indicator: "Live", "Connecting…", "Reconnecting…" (polite live region). */
export function LiveState(props: { state: "connecting" | "live" | "reconnecting" }) {
  const text =
    props.state === "live" ? "Live" : props.state === "connecting" ? "Connecting…" : "Reconnecting…";
  return html`<span class=${`live live-${props.state}`} role="status">${text}</span>`;
}
