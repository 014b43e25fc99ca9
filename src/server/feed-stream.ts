import type { FeedEntry, FeedKind, FeedQuery } from "../store/store.ts";
import type { Actor, ServerContext } from "./context.ts";

// One client's feed as server-sent events: first the backlog after the id it asks for (pages of
// 1000, read as the client takes them), then new entries as they are committed, by this process
// (woken at once by the store) or another (a CLI run on the same kitchen: one poll of the newest id
// every 250 ms for all streams). A stream ends when its client goes away, the server stops, or its
// token, session or grants no longer hold.

/** The streams' timings (a test may shorten them). */
export const feedTimings = {
  /** how often other processes' entries are looked for */
  pollMs: 250,
  /** a comment line this often keeps proxies and browsers from closing an idle stream */
  keepaliveMs: 15_000,
};
/** Streams one token or user may hold open at once. */
export const streamsPerActor = 20;
/** Entries read (and sent) per page of a stream's backlog. */
const pageSize = 1000;

/** What a stream sends: which entries, and after which id. */
export interface StreamFilter {
  stacks?: readonly string[] | undefined;
  subject?: string | undefined;
  kinds?: readonly FeedKind[] | undefined;
  after?: number | undefined;
}

const openStreams = new WeakMap<ServerContext, Map<string, number>>();

function actorKey(actor: Actor | undefined): string {
  if (actor === undefined) return "anonymous";
  return actor.kind === "token"
    ? `token:${actor.id}`
    : actor.kind === "user"
      ? `user:${actor.name}`
      : "agent";
}

/** The event-stream response of one client: backlog, then live, until it goes away or the server stops. */
export async function openStream(
  ctx: ServerContext,
  actor: Actor | undefined,
  request: Request,
  lastSeen: number | undefined,
  filter: StreamFilter,
): Promise<Response> {
  const counts = openStreams.get(ctx) ?? new Map<string, number>();
  openStreams.set(ctx, counts);
  const key = actorKey(actor);
  if ((counts.get(key) ?? 0) >= streamsPerActor)
    return Response.json(
      {
        error: {
          code: "STREAMS_LIMIT",
          message: `${key} has ${streamsPerActor} feed streams open already`,
          hint: "close another stream (a browser tab) first, or retry later",
        },
      },
      { status: 429, headers: { "retry-after": "5" } },
    );
  // counted before anything is awaited: streams opened at once cannot pass the limit together
  counts.set(key, (counts.get(key) ?? 0) + 1);
  let newest: number;
  try {
    newest = await ctx.store.lastFeedId();
  } catch (error) {
    release(counts, key);
    throw error;
  }
  const asked = Math.max(lastSeen ?? -1, filter.after ?? -1);
  // nothing asked: only new entries; an id past the newest (a store started again): from the newest
  let cursor = asked < 0 ? newest : Math.min(asked, newest);
  const query: FeedQuery = {
    ...(filter.stacks === undefined ? {} : { stacks: filter.stacks }),
    ...(filter.subject === undefined ? {} : { subject: filter.subject }),
    ...(filter.kinds === undefined ? {} : { kinds: filter.kinds }),
  };
  const encoder = new TextEncoder();
  let ended = false;
  let wake: (() => void) | undefined;
  // a wake-up that came while the stream was reading, not waiting: it reads again at once
  let signalled = false;
  let unwatch: (() => void) | undefined;
  // a stream outlives neither its token, its session nor its grants: checked every keepalive period
  let checkedAt = Date.now();
  const allowed = async () => {
    if (Date.now() - checkedAt < feedTimings.keepaliveMs) return true;
    checkedAt = Date.now();
    return stillAllowed(ctx, actor);
  };
  const end = () => {
    if (ended) return;
    ended = true;
    unwatch?.();
    request.signal.removeEventListener("abort", end);
    release(counts, key);
    wake?.();
  };
  request.signal.addEventListener("abort", end);
  // a newer id than the cursor (this process's commits, or another's by polling) wakes the stream
  unwatch = watchFeed(ctx, (last) => {
    if (last <= cursor) return;
    signalled = true;
    wake?.();
  });
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode("retry: 1000\n\n"));
    },
    async pull(controller) {
      try {
        while (!ended) {
          signalled = false;
          const last = await ctx.store.lastFeedId();
          const entries = await ctx.store.readFeed({
            ...query,
            after: cursor,
            limit: pageSize,
            order: "asc",
          });
          if (ended) break;
          if (entries.length > 0) {
            if (!(await allowed())) break;
            // a short page holds every match up to `last`: the cursor moves past non-matching ids too
            cursor = entries.length < pageSize ? Math.max(last, entries.at(-1)!.id) : entries.at(-1)!.id;
            controller.enqueue(encoder.encode(entries.map(eventText).join("")));
            return;
          }
          cursor = Math.max(cursor, last);
          if (signalled) continue;
          const woken = await new Promise<boolean>((resolve) => {
            const timer = setTimeout(() => resolve(false), feedTimings.keepaliveMs);
            wake = () => {
              clearTimeout(timer);
              resolve(true);
            };
          });
          wake = undefined;
          if (!woken && !ended) {
            // the client asks again, and is answered 401 or 403
            if (!(await allowed())) break;
            controller.enqueue(encoder.encode(": keepalive\n\n"));
            return;
          }
        }
      } catch (error) {
        // the store closed under it (the server stops), or failed: the client reconnects
        if (!ended) ctx.log(`feed stream: ${error instanceof Error ? error.message : String(error)}`);
      }
      end();
      try {
        controller.close();
      } catch {
        // cancelled already
      }
    },
    cancel() {
      end();
    },
  });
  return new Response(body, {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-store",
      "x-accel-buffering": "no",
    },
  });
}

function release(counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 1) - 1;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}

/** Whether the actor a stream opened for still holds its token, session and grants (checked every keepalive). */
async function stillAllowed(ctx: ServerContext, actor: Actor | undefined): Promise<boolean> {
  if (actor === undefined || actor.kind === "agent") return false;
  const now = new Date().toISOString();
  if (actor.session !== undefined && (await ctx.store.sessionByHash(actor.session.hash, now)) === undefined)
    return false;
  if (actor.kind === "user") {
    const user = await ctx.store.getUser(actor.name);
    return user !== undefined && JSON.stringify(user.grants) === JSON.stringify(actor.grants);
  }
  const token = (await ctx.store.listTokens()).find((t) => t.id === actor.id);
  return (
    token !== undefined &&
    token.revokedAt === undefined &&
    (token.expiresAt === undefined || Date.parse(token.expiresAt) > Date.now())
  );
}

function eventText(entry: FeedEntry): string {
  return `id: ${entry.id}\nevent: ${entry.kind}\ndata: ${JSON.stringify(entry)}\n\n`;
}

interface FeedWatch {
  listeners: Set<(last: number) => void>;
  stop: () => void;
}

const watches = new WeakMap<ServerContext, FeedWatch>();

/**
 * Calls `listener` with the newest id when entries are committed: at once for this process's, and
 * by one poll of `lastFeedId` every 250 ms for every stream of the server (another process's).
 */
function watchFeed(ctx: ServerContext, listener: (last: number) => void): () => void {
  let watch = watches.get(ctx);
  if (watch === undefined) {
    const listeners = new Set<(last: number) => void>();
    const tell = (last: number) => {
      for (const l of [...listeners]) l(last);
    };
    const unsubscribe = ctx.store.watchFeed(tell);
    let polling = false;
    const timer = setInterval(() => {
      if (polling) return;
      polling = true;
      ctx.store.lastFeedId().then(
        (last) => {
          polling = false;
          tell(last);
        },
        () => {
          polling = false;
        },
      );
    }, feedTimings.pollMs);
    timer.unref();
    const created: FeedWatch = {
      listeners,
      stop: () => {
        clearInterval(timer);
        unsubscribe();
      },
    };
    watch = created;
    watches.set(ctx, created);
  }
  const current = watch;
  current.listeners.add(listener);
  return () => {
    current.listeners.delete(listener);
    if (current.listeners.size === 0) {
      current.stop();
      if (watches.get(ctx) === current) watches.delete(ctx);
    }
  };
}
