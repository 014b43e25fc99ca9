import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { eventAction, type StackAction } from "../../deploy/actions.ts";
import { runSettings } from "../../deploy/ask.ts";
import { runStackActionFed } from "../../deploy/feed.ts";
import { lifecycleEvents } from "../../stacks/schema.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import {
  backgroundAction,
  idParam,
  openServedStack,
  recordStack,
  resolveStack,
  stackParams,
  startInBackground,
} from "./stacks.ts";

// Lifecycle events over the API: a stack's events, one event with each instance's outcome, and
// running one (`galley run EVENT`): the server answers 202 with the event's id once it is recorded
// and runs it on; GET /v1/events/:id tells when it ended and, for this server's runs, the outcome.

// the CLI's --forks and --wait: "4" or 4 alike
const flag = v.pipe(
  v.union([v.string(), v.number()]),
  v.transform((x) => String(x)),
);

const limitQuery = v.object({
  limit: v.optional(
    v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,3}$/, "a number from 1 to 9999"), v.transform(Number)),
  ),
});

/** What this server knows of a background action it runs or ran. */
export const backgroundSchema = v.object({
  status: v.picklist(["running", "done", "failed"]),
  exitCode: v.optional(v.number()),
  result: v.optional(v.unknown()),
  error: v.optional(v.object({ code: v.string(), message: v.string(), hint: v.optional(v.string()) })),
});

// the event a POST asks for: a lifecycle event, or named recipes (run-recipes)
function stackActionOf(body: {
  kind: (typeof lifecycleEvents)[number] | "run-recipes";
  recipes?: string[] | undefined;
  layer?: string | undefined;
  instance?: string | undefined;
  app?: string | undefined;
}): StackAction {
  if (body.kind !== "run-recipes") {
    if (body.recipes !== undefined)
      throw new GalleyError(
        "REQUEST_INVALID",
        `body.recipes: only kind run-recipes takes recipes (got ${body.kind})`,
        {
          hint: 'send { "kind": "run-recipes", "recipes": ["lb::configure"] }',
        },
      );
    return eventAction(body.kind, body);
  }
  if (body.recipes === undefined)
    throw new GalleyError("REQUEST_INVALID", "body.recipes: kind run-recipes names its recipes", {
      hint: 'send { "kind": "run-recipes", "recipes": ["lb::configure"] }',
    });
  if (body.app !== undefined)
    throw new GalleyError("REQUEST_INVALID", "body.app: run-recipes takes no app", {
      hint: "leave app out; choose instances with layer or instance",
    });
  // the selection as galley run-recipes checks it: --layer or --instance, not both
  const { selection } = eventAction("configure", { layer: body.layer, instance: body.instance }) as {
    selection: { layer?: string | undefined; instance?: string | undefined };
  };
  return { kind: "recipes", recipes: body.recipes, selection };
}

/** Declares the event routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  resolveStack(app, "/v1/events/:id", async (id) => (await ctx.store.getEvent(id))?.stack);
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/events",
      summary: "A stack's lifecycle events, newest first",
      tags: ["events"],
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      query: limitQuery,
      response: v.object({
        stack: v.string(),
        events: v.array(v.object({ id: v.number(), kind: v.string() })),
      }),
    },
    async ({ params, query }) => ({
      stack: params.stack,
      events: await ctx.store.listEvents(params.stack, { limit: query.limit ?? 20 }),
    }),
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/events/:id",
      summary: "One event with each instance's outcome and log; `action`: its run on this server",
      tags: ["events"],
      auth: "token",
      role: "viewer",
      params: v.object({ id: idParam }),
      stack: () => recordStack(),
      response: v.object({
        event: v.object({
          id: v.number(),
          stack: v.string(),
          status: v.string(),
          outcomes: v.array(v.unknown()),
        }),
        action: v.optional(backgroundSchema),
      }),
    },
    async ({ params }) => {
      const event = await ctx.store.getEvent(params.id);
      if (!event)
        throw new GalleyError("NOT_FOUND", `the server has no event #${params.id}`, {
          hint: "GET /v1/stacks/STACK/events lists a stack's events",
        });
      const action = backgroundAction(ctx, `event:${event.id}`);
      return { event, ...(action ? { action } : {}) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/stacks/:stack/events",
      summary:
        "Runs a lifecycle event on online instances (galley run), or named recipes (kind run-recipes with recipes: galley run-recipes); 202 with its id at once",
      tags: ["events"],
      auth: "token",
      role: "deployer",
      action: "event.run",
      params: stackParams,
      stack: (p) => p.stack,
      body: v.strictObject({
        kind: v.picklist([...lifecycleEvents, "run-recipes"]),
        recipes: v.optional(
          v.pipe(
            v.array(
              v.pipe(
                v.string(),
                v.regex(
                  /^[A-Za-z0-9_.-]{1,64}(::[A-Za-z0-9_.-]{1,64})?$/,
                  "a recipe: COOKBOOK or COOKBOOK::RECIPE",
                ),
              ),
            ),
            v.minLength(1, "at least one recipe"),
            v.maxLength(100, "at most 100 recipes"),
          ),
        ),
        layer: v.optional(v.string()),
        instance: v.optional(v.string()),
        app: v.optional(v.string()),
        forks: v.optional(flag),
        wait: v.optional(flag),
      }),
      status: 202,
      response: v.object({ id: v.number() }),
    },
    async ({ params, body }) => {
      const action = stackActionOf(body);
      const settings = await runSettings(body);
      const id = await startInBackground(ctx, "event", async (started, signal) => {
        const context = await openServedStack(ctx, params.stack);
        try {
          const result = await runStackActionFed(ctx, context, action, {
            log: ctx.log,
            signal,
            waitMs: settings.waitMs,
            ...(settings.forks === undefined ? {} : { forks: settings.forks }),
            onEventStarted: (event) => started(event.id),
          });
          return { exitCode: result.exitCode, result: result.outcome };
        } finally {
          await context.store.close();
        }
      });
      return { id };
    },
  );
}
