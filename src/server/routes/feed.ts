import * as fs from "node:fs/promises";
import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { type FeedKind, type FeedQuery, feedKinds } from "../../store/store.ts";
import { can, grantsAllow } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { openStream } from "../feed-stream.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { servedStackFile, stackParams } from "./stacks.ts";

// The feed over the API: a stack's entries as JSON pages (a log viewer pages by offset), and live
// as server-sent events (src/server/feed-stream.ts) that resume after the last id a client saw
// (Last-Event-ID or ?after): the backlog in order, then new entries as they are committed.
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
