import * as fs from "node:fs/promises";
import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { type FeedEntry, type FeedKind, type FeedQuery, feedKinds } from "../../store/store.ts";
import { can, grantsAllow } from "../auth.ts";
import type { Actor, ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { servedStackFile, stackParams } from "./stacks.ts";

// The feed over the API: a stack's entries as JSON pages (a log viewer pages by offset), and live
// as server-sent events that resume after the last id a client saw (Last-Event-ID or ?after):
// first the backlog in order, then new entries as they are committed, by this process (woken at
// once) or another (a CLI run on the same kitchen: seen by polling every 250 ms).

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

const id = (what: string) =>
  v.pipe(
    v.string(),
    v.regex(/^(0|[1-9][0-9]{0,14})$/, `${what}: a feed id (a whole number)`),
    v.transform(Number),
  );

const kindsParam = v.pipe(
  v.string(),
  v.transform((text) => text.split(",").map((k) => k.trim())),
  v.check(
    (kinds) => kinds.every((k) => (feedKinds as readonly string[]).includes(k)),
    `comma-separated feed kinds: ${feedKinds.join(", ")}`,
  ),
  v.transform((kinds) => kinds as FeedKind[]),
);

const subjectParam = v.pipe(
  v.string(),
  v.regex(/^[a-z]+:[^\s,]{1,200}$/, "a subject: instance:NAME, event:ID or deployment:ID"),
);

const pageQuery = v.object({
  after: v.optional(id("after")),
  before: v.optional(id("before")),
  offset: v.optional(
    v.pipe(v.string(), v.regex(/^(0|[1-9][0-9]{0,8})$/, "a whole number from 0"), v.transform(Number)),
  ),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[1-9][0-9]{0,3}$/, "a number from 1 to 5000"),
      v.transform(Number),
      v.maxValue(5000, "a number from 1 to 5000"),
    ),
  ),
  subject: v.optional(subjectParam),
  kinds: v.optional(kindsParam),
  order: v.optional(v.picklist(["asc", "desc"])),
  total: v.optional(v.picklist(["1", "0", "true", "false"])),
});

const streamQuery = v.object({
  subject: v.optional(subjectParam),
  kinds: v.optional(kindsParam),
  after: v.optional(id("after")),
});

const entrySchema = v.object({
  id: v.number(),
  at: v.string(),
  stack: v.string(),
  kind: v.picklist(feedKinds),
  subject: v.optional(v.string()),
  data: v.unknown(),
});

/** Declares the feed routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/feed",
      summary:
        "A stack's feed entries, a page at a time (after/before an id, or by offset); `last`: the newest id",
      tags: ["feed"],
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      query: pageQuery,
      response: v.object({ entries: v.array(entrySchema), last: v.number(), total: v.optional(v.number()) }),
    },
    async ({ params, query }) => {
      await servedStack(ctx, params.stack);
      const { total, ...rest } = query;
      const feedQuery: FeedQuery = { ...rest, stacks: [params.stack], limit: query.limit ?? 500 };
      // `last` first: a page that reads it before its data misses nothing by streaming after it
      const last = await ctx.store.lastFeedId();
      const entries = await ctx.store.readFeed(feedQuery);
      const counted =
        total === "1" || total === "true" ? { total: await ctx.store.countFeed(feedQuery) } : {};
      return { entries, last, ...counted };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/feed/stream",
      summary:
        "A stack's feed as server-sent events: after Last-Event-ID or ?after (else only new entries), the backlog in order, then live",
      tags: ["feed"],
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      query: streamQuery,
      response: v.string(),
      contentType: "text/event-stream",
    },
    async ({ c, params, query, actor }) => {
      await servedStack(ctx, params.stack);
      return openStream(ctx, actor, c.req.raw, lastEventId(c.req.header("last-event-id")), {
        stacks: [params.stack],
        subject: query.subject,
        kinds: query.kinds,
        after: query.after,
      });
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/feed/stream",
      summary:
        "The feed of every stack the token or user may view, as server-sent events (resumes like a stack's stream)",
      tags: ["feed"],
      auth: "token",
      // any token or user may ask; it hears only of the stacks its grants let it view
      authorizeInHandler: true,
      query: v.object({ kinds: streamQuery.entries.kinds, after: streamQuery.entries.after }),
      response: v.string(),
      contentType: "text/event-stream",
    },
    async ({ c, query, actor }) => {
      const grants = actor !== undefined && actor.kind !== "agent" ? actor.grants : [];
      const stacks = grantsAllow(grants, undefined, "viewer")
        ? undefined
        : [...new Set(grants.map((g) => g.stack))].filter((stack) => can(actor, stack, "viewer"));
      return openStream(ctx, actor, c.req.raw, lastEventId(c.req.header("last-event-id")), {
        stacks,
        kinds: query.kinds,
        after: query.after,
      });
    },
  );
}

// a stack the server serves; else 404, as the other stack routes answer
async function servedStack(ctx: ServerContext, stack: string): Promise<void> {
  const exists = await fs.stat(servedStackFile(ctx, stack)).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!exists)
    throw new GalleyError("NOT_FOUND", `the server has no stack ${stack}`, {
      hint: "GET /v1/stacks lists them",
    });
}

function lastEventId(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === "") return undefined;
  if (!/^(0|[1-9][0-9]{0,14})$/.test(header.trim()))
    throw new GalleyError("REQUEST_INVALID", "the Last-Event-ID header is not a feed id", {
      hint: "send the id of the last event received, or none",
    });
  return Number(header.trim());
}

/** What a stream sends: which entries, and after which id. */
interface StreamFilter {
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
async function openStream(
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
  const newest = await ctx.store.lastFeedId();
  const asked = Math.max(lastSeen ?? -1, filter.after ?? -1);
  // nothing asked: only new entries; an id past the newest (a store started again): from the newest
  let cursor = asked < 0 ? newest : Math.min(asked, newest);
  const query: FeedQuery = {
    ...(filter.stacks === undefined ? {} : { stacks: filter.stacks }),
    ...(filter.subject === undefined ? {} : { subject: filter.subject }),
    ...(filter.kinds === undefined ? {} : { kinds: filter.kinds }),
  };
  counts.set(key, (counts.get(key) ?? 0) + 1);
  const encoder = new TextEncoder();
  let ended = false;
  let wake: (() => void) | undefined;
  // a wake-up that came while the stream was reading, not waiting: it reads again at once
  let signalled = false;
  let unwatch: (() => void) | undefined;
  const end = () => {
    if (ended) return;
    ended = true;
    unwatch?.();
    request.signal.removeEventListener("abort", end);
    const n = (counts.get(key) ?? 1) - 1;
    if (n > 0) counts.set(key, n);
    else counts.delete(key);
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
            // a stream outlives neither its token, its session nor its grants: the client asks again
            if (!(await stillAllowed(ctx, actor))) break;
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
