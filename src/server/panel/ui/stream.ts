import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api.ts";
import {
  type FeedEntry,
  FeedCursor,
  type FeedSelection,
  feedKinds,
  lastUrl,
  streamUrl,
} from "./feed-cursor.ts";

// Live updates: a page follows the feed (server-sent events) from where its data was loaded. The
// stream resumes after a disconnect from the last entry seen, so nothing is lost or applied twice.

/** How a page follows the feed. */
export interface FeedOptions extends FeedSelection {
  /** new entries, in id order, each once; batched (at most every 50 ms) */
  onEntries: (entries: FeedEntry[]) => void;
  /** false: not yet (default true) */
  enabled?: boolean | undefined;
}

/** The stream's state, for a "live" / "reconnecting" indicator. */
export type FeedState = "connecting" | "live" | "reconnecting";

/**
 * Follows the feed. `ready` turns true once the stream's start is fixed (a stack's `last` is read;
 * for every stack, once the stream is open): a page loads its data when ready, so that nothing
 * between its load and the stream is missed (an entry applied twice is harmless).
 *
 * @example const feed = useFeed({ stack, kinds: ["instance"], onEntries: (es) => … });
 *   useEffect(() => { if (feed.ready) load(); }, [feed.ready]);
 */
export function useFeed(options: FeedOptions): { state: FeedState; ready: boolean } {
  const [state, setState] = useState<FeedState>("connecting");
  const [ready, setReady] = useState(false);
  const onEntries = useRef(options.onEntries);
  onEntries.current = options.onEntries;
  const { stack, subject } = options;
  const kinds = options.kinds?.join(",") ?? "";
  const enabled = options.enabled !== false;
  useEffect(() => {
    if (!enabled) return;
    const selection: FeedSelection = {
      stack,
      subject,
      kinds: kinds === "" ? undefined : (kinds.split(",") as FeedSelection["kinds"]),
    };
    const cursor = new FeedCursor();
    let closed = false;
    let source: EventSource | undefined;
    let retry: ReturnType<typeof setTimeout> | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let failures = 0;
    let opened = false;
    let buffer: FeedEntry[] = [];
    setState("connecting");
    setReady(false);
    const flush = () => {
      flushTimer = undefined;
      const batch = buffer;
      buffer = [];
      if (batch.length > 0 && !closed) onEntries.current(batch);
    };
    const onEntry = (event: MessageEvent<string>) => {
      let entry: FeedEntry;
      try {
        entry = JSON.parse(event.data) as FeedEntry;
      } catch {
        return;
      }
      if (!cursor.accept(entry)) return;
      buffer.push(entry);
      flushTimer ??= setTimeout(flush, 50);
    };
    const open = () => {
      if (closed) return;
      const es = new EventSource(streamUrl(selection, cursor.last));
      source = es;
      es.onopen = () => {
        failures = 0;
        opened = true;
        setState("live");
        if (stack === undefined) setReady(true);
      };
      for (const kind of feedKinds) es.addEventListener(kind, onEntry);
      es.onerror = () => {
        // reopened by hand (not by EventSource itself), so that it always resumes after the last id
        // seen, also when the server answered an error and EventSource would give up
        es.close();
        if (closed) return;
        flush();
        setState("reconnecting");
        // every stack's stream cannot resume before its first entry: the page reloads when it reopens;
        // one that never opened still lets the page load (without live updates until it does)
        if (stack === undefined && cursor.last === undefined) setReady(!opened);
        failures += 1;
        // EventSource does not say why it failed: an ended session shows as a 401 here (→ /login)
        if (failures === 2) void api.get("/v1/session").catch(() => {});
        retry = setTimeout(open, Math.min(500 * 2 ** (failures - 1), 10_000));
      };
    };
    void (async () => {
      if (stack !== undefined) {
        try {
          cursor.last = (await api.get<{ last: number }>(lastUrl(stack))).last;
        } catch {
          // the feed's position is unknown: stream from the newest entry on
        }
        if (closed) return;
        setReady(true);
      }
      open();
    })();
    return () => {
      closed = true;
      source?.close();
      clearTimeout(retry);
      clearTimeout(flushTimer);
    };
  }, [stack, subject, kinds, enabled]);
  return { state, ready };
}

/** Calls `fn` with the keys asked for, at most once per `ms` (a steady stream of calls still runs it). */
export function useCoalesced<K>(fn: (keys: K[]) => void, ms: number): (key: K) => void {
  const latest = useRef(fn);
  latest.current = fn;
  const pending = useRef<{ keys: Set<K>; timer: ReturnType<typeof setTimeout> | undefined }>({
    keys: new Set(),
    timer: undefined,
  });
  useEffect(() => () => clearTimeout(pending.current.timer), []);
  return (key: K) => {
    const p = pending.current;
    p.keys.add(key);
    p.timer ??= setTimeout(() => {
      p.timer = undefined;
      const keys = [...p.keys];
      p.keys.clear();
      latest.current(keys);
    }, ms);
  };
}
