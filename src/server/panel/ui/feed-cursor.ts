// The position of a feed stream: the newest entry id seen. Entries at or below it are ones already
// applied (a reconnect's backlog overlapping what came before), so they are dropped. Pure (no DOM).

/** Feed entry kinds (src/store/store.ts feedKinds): the SSE event names. */
export const feedKinds = [
  "stack",
  "instance",
  "state",
  "event",
  "outcome",
  "deployment",
  "step",
  "agent",
  "run",
  "phase",
  "log",
] as const;

/** One kind of feed entry. */
export type FeedKind = (typeof feedKinds)[number];

/** A feed entry as the API sends it. */
export interface FeedEntry {
  id: number;
  at: string;
  stack: string;
  kind: FeedKind;
  subject?: string | undefined;
  data: unknown;
}

/** What a stream follows. */
export interface FeedSelection {
  /** one stack's feed; without: every stack the session may view */
  stack?: string | undefined;
  /** `deployment:7`, `event:3`, `instance:web1` */
  subject?: string | undefined;
  kinds?: readonly FeedKind[] | undefined;
}

/** The newest id seen; `undefined` until the stream's start is known. */
export class FeedCursor {
  last: number | undefined;

  constructor(last?: number) {
    this.last = last;
  }

  /** Whether `entry` is new (and then moves past it); false for one seen already. */
  accept(entry: { id: number }): boolean {
    if (!Number.isSafeInteger(entry.id)) return false;
    if (this.last !== undefined && entry.id <= this.last) return false;
    this.last = entry.id;
    return true;
  }
}

/** The stream's URL for a selection, resuming after `after` (none: from now on). */
export function streamUrl(selection: FeedSelection, after: number | undefined): string {
  const query = new URLSearchParams();
  if (selection.stack !== undefined && selection.subject !== undefined)
    query.set("subject", selection.subject);
  if (selection.kinds !== undefined && selection.kinds.length > 0)
    query.set("kinds", selection.kinds.join(","));
  if (after !== undefined) query.set("after", String(after));
  const base =
    selection.stack === undefined
      ? "/v1/feed/stream"
      : `/v1/stacks/${encodeURIComponent(selection.stack)}/feed/stream`;
  const text = query.toString();
  return text === "" ? base : `${base}?${text}`;
}

/** The URL that tells where a stack's feed is now (`last`) without reading its entries. */
export function lastUrl(stack: string): string {
  return `/v1/stacks/${encodeURIComponent(stack)}/feed?limit=1&order=desc`;
}
