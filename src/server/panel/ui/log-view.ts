import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "htm/preact";
import { api } from "./api.ts";
import {
  atBottom,
  type LogFeedPage,
  type LogLine,
  type LogLoader,
  LogModel,
  visibleRange,
} from "./log-model.ts";

// A virtualized log (a deployment's or an event's): rows of a fixed height, only those in view
// (and a few either side) in the DOM, pages of lines fetched by offset from the feed as they come
// into view. It opens at the end and follows new lines while scrolled to the bottom; the page that
// streams the subject's feed hands the log lines to the model (useLogModel), which keeps each once.

/** A row's height in px: the CSS of .log-line does not set it, this does (the maths needs it exact). */
export const rowHeight = 20;
/** Rows rendered above and below the viewport. */
const overscan = 30;
/** Never more rows than this in the DOM, whatever the viewport's height. */
const maxRows = 200;

/** The feed JSON of a subject's log lines, paged (GET /v1/stacks/:stack/feed). */
export function feedLoader(stack: string, subject: string): LogLoader {
  return (paging) => {
    const query = new URLSearchParams({ subject, kinds: "log", ...paging });
    return api.get<LogFeedPage>(`/v1/stacks/${encodeURIComponent(stack)}/feed?${query}`);
  };
}

/** The log model of a stack's subject ("deployment:7"), once the stack is known; kept across renders. */
export function useLogModel(stack: string | undefined, subject: string): LogModel | undefined {
  return useMemo(() => (stack ? new LogModel(feedLoader(stack, subject)) : undefined), [stack, subject]);
}

/** The log, virtualized: `role="log"` named by `label`, each line with `data-id` its feed id. */
export function LogView(props: { model: LogModel; label: string }) {
  const { model, label } = props;
  const scroller = useRef<HTMLDivElement>(null);
  const follow = useRef(true);
  const frame = useRef(0);
  const [, setVersion] = useState(0);
  const [view, setView] = useState({ top: 0, height: 400 });
  const [error, setError] = useState<string | undefined>(undefined);

  const alive = useRef(true);
  const fail = (e: unknown) => {
    if (alive.current) setError(e instanceof Error ? e.message : String(e));
  };
  const open = () => {
    setError(undefined);
    model.open().catch(fail);
  };
  useEffect(() => {
    alive.current = true;
    model.onChange = () => {
      if (alive.current) setVersion((n) => n + 1);
    };
    if (!model.opened) open();
    else setVersion((n) => n + 1);
    return () => {
      alive.current = false;
      model.onChange = () => {};
      cancelAnimationFrame(frame.current);
    };
  }, [model]);

  // following: on while at the end; off once the reader moves up (a scroll event that only
  // reports lines added below, after a jump to the end, leaves it on)
  const lastTop = useRef(0);
  const onScroll = () => {
    const el = scroller.current;
    if (!el) return;
    if (atBottom(el.scrollTop, el.clientHeight, el.scrollHeight, rowHeight)) follow.current = true;
    else if (el.scrollTop < lastTop.current) follow.current = false;
    lastTop.current = el.scrollTop;
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => setView({ top: el.scrollTop, height: el.clientHeight }));
  };

  // open at the end, and stay there while following
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (follow.current && el.scrollTop + el.clientHeight < el.scrollHeight) {
      el.scrollTop = el.scrollHeight;
      lastTop.current = el.scrollTop;
      setView({ top: el.scrollTop, height: el.clientHeight });
    } else if (el.clientHeight !== view.height) setView({ top: el.scrollTop, height: el.clientHeight });
  });

  const total = model.total;
  let { first, end } = visibleRange(view.top, view.height, rowHeight, total, overscan);
  if (end - first > maxRows) first = end - maxRows;
  useEffect(() => {
    if (model.opened) model.need(first, end).catch(fail);
  }, [model, first, end, total]);

  const rows = [];
  let missing = false;
  for (let position = first; position < end; position += 1) {
    const line = model.row(position);
    if (!line) missing = true;
    rows.push(
      line
        ? html`<div class="log-line" key=${position} data-id=${line.id} style=${rowStyle}>${
            line.instance ? html`<span class="log-instance">${line.instance}</span> ` : ""
          }${lineText(line)}</div>`
        : html`<div class="log-line log-loading" key=${position} style=${rowStyle} aria-hidden="true">…</div>`,
    );
  }
  const jump = () => {
    const el = scroller.current;
    if (!el) return;
    follow.current = true;
    el.scrollTop = el.scrollHeight;
    el.focus();
  };
  return html`<div class="log-box">
    <div class="log-bar">
      <span>${model.opened ? `${total.toLocaleString("en")} ${total === 1 ? "line" : "lines"}` : "Loading the log…"}</span>
      ${!follow.current && html`<button type="button" class="log-follow" onClick=${jump}>Follow the end</button>`}
      ${
        error &&
        html`<span class="error" role="alert">The log could not be read: ${error}</span>
          ${!model.opened && html`<button type="button" onClick=${open}>Read the log again</button>`}`
      }
    </div>
    <div
      class="log-view"
      role="log"
      aria-label=${label}
      aria-live="off"
      aria-busy=${missing || !model.opened ? "true" : "false"}
      tabindex="0"
      ref=${scroller}
      onScroll=${onScroll}
      style=${scrollerStyle}
    >
      <div class="log-spacer" style=${{ position: "relative", height: `${total * rowHeight}px` }}>
        <div class="log-rows" style=${{ ...rowsStyle, transform: `translateY(${first * rowHeight}px)` }}>
          ${rows}
        </div>
      </div>
      ${model.opened && total === 0 && html`<p class="log-empty">No log lines yet.</p>`}
    </div>
  </div>`;
}

/** A line as shown after its instance: without the "web1: " it may start with (the instance is shown before it). */
export function lineText(line: LogLine): string {
  const prefix = line.instance === undefined ? undefined : `${line.instance}: `;
  return prefix !== undefined && line.line.startsWith(prefix) ? line.line.slice(prefix.length) : line.line;
}

// the styles the windowing maths depends on are set here (through the CSSOM, which the CSP allows),
// not left to style.css; aria-live is off: hundreds of lines a second read aloud would drown the
// page's status, which announces what changes
const rowStyle = {
  height: `${rowHeight}px`,
  lineHeight: `${rowHeight}px`,
  whiteSpace: "pre",
  overflow: "hidden",
};
const rowsStyle = { position: "absolute", top: "0", left: "0", minWidth: "100%" };
const scrollerStyle = { overflow: "auto", height: "min(60vh, 32rem)", position: "relative" };
