import * as fs from "node:fs/promises";
import * as v from "valibot";
import { GalleyError, isGalleyError } from "../../core/errors.ts";
import type { AgentRunRecord } from "../../store/store.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { instanceParams, runView } from "./runs.ts";
import { idParam, recordStack, resolveStack, servedStackFile, stackName, withServedStack } from "./stacks.ts";

// The converge reports of an instance over the API, for the panel's report pages: the instance's
// outcomes across its stack's events (newest first, counted, without their bodies), one outcome
// with its report and log, and one of its agent's own runs with its report. Reports hold what
// the run recorded: a sensitive resource's values are "(sensitive)" in its diff (core/report.ts
// redactChanges), and the store kept every text scrubbed of the run's secrets.

const instanceName = v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,62}$/, "an instance name"));

const reportEntrySchema = v.object({
  eventId: v.number(),
  event: v.object({ id: v.number(), kind: v.string(), status: v.string(), createdAt: v.string() }),
  status: v.string(),
  startedAt: v.string(),
  finishedAt: v.nullable(v.string()),
  bundle: v.nullable(v.string()),
  /** counted from the report: null when the outcome has none (never reached, or no recipes) */
  changed: v.nullable(v.number()),
  failed: v.nullable(v.number()),
  resources: v.nullable(v.number()),
});

/** changed, failed and resources of a converge report (core/report.ts Report); null without one. */
export function reportCounts(report: unknown): {
  changed: number | null;
  failed: number | null;
  resources: number | null;
} {
  if (report === null || typeof report !== "object") return { changed: null, failed: null, resources: null };
  const { summary, resources } = report as { summary?: unknown; resources?: unknown };
  const list = Array.isArray(resources)
    ? (resources as { status?: unknown; ignored?: unknown }[])
    : undefined;
  const count = (status: string) =>
    list === undefined ? null : list.filter((r) => r?.status === status && r?.ignored !== true).length;
  const fromSummary = (key: string) => {
    const n = (summary as Record<string, unknown> | undefined)?.[key];
    return typeof n === "number" ? n : count(key);
  };
  return { changed: fromSummary("changed"), failed: fromSummary("failed"), resources: list?.length ?? null };
}

// a whole number in a path: 0 and up
const countParam = (what: string) =>
  v.pipe(v.string(), v.regex(/^(0|[1-9][0-9]{0,14})$/, `${what}: a whole number`), v.transform(Number));

/** Whether the stack (its file) has the instance, or the store has a record of it. */
async function instanceKnown(ctx: ServerContext, stack: string, name: string): Promise<boolean> {
  const exists = await fs.stat(servedStackFile(ctx, stack)).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!exists)
    throw new GalleyError("NOT_FOUND", `the server has no stack ${stack}`, {
      hint: "GET /v1/stacks lists them",
    });
  if (await ctx.store.getInstance(stack, name)) return true;
  if ((await ctx.store.getAgent(stack, name)) !== undefined) return true;
  return withServedStack(ctx, stack, { checkRecipes: false, decrypt: false }, async (context) =>
    context.stack.instances.some((i) => i.name === name),
  ).catch((error: unknown) => {
    // a file that does not load declares nothing we can read
    if (isGalleyError(error)) return false;
    throw error;
  });
}

function noInstance(stack: string, name: string): GalleyError {
  return new GalleyError("NOT_FOUND", `stack ${stack} has no instance ${name}`, {
    hint: `GET /v1/stacks/${stack}/instances lists them`,
  });
}

/** Declares the report routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  resolveStack(app, "/v1/events/:id/instances/:name", async (id) => (await ctx.store.getEvent(id))?.stack);
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/instances/:name/reports",
      summary:
        "An instance's outcomes across its stack's events (its converge reports), newest first, counted: changed, failed, resources; without their bodies",
      tags: ["instances"],
      auth: "token",
      role: "viewer",
      params: instanceParams,
      stack: (p) => p.stack,
      query: v.object({
        limit: v.optional(
          v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,2}$/, "a number from 1 to 999"), v.transform(Number)),
        ),
        before: v.optional(idParam),
      }),
      response: v.object({ stack: v.string(), instance: v.string(), reports: v.array(reportEntrySchema) }),
    },
    async ({ params, query }) => {
      const outcomes = await ctx.store.listInstanceOutcomes(params.stack, params.name, {
        limit: query.limit ?? 20,
        ...(query.before === undefined ? {} : { before: query.before }),
      });
      if (outcomes.length === 0 && !(await instanceKnown(ctx, params.stack, params.name)))
        throw noInstance(params.stack, params.name);
      return {
        stack: params.stack,
        instance: params.name,
        reports: outcomes.map((o) => ({
          eventId: o.eventId,
          event: { id: o.event.id, kind: o.event.kind, status: o.event.status, createdAt: o.event.createdAt },
          status: o.status,
          startedAt: o.startedAt,
          finishedAt: o.finishedAt ?? null,
          bundle: o.bundle ?? null,
          ...reportCounts(o.report),
        })),
      };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/events/:id/instances/:name",
      summary: "One instance's outcome of an event, with its converge report and log",
      tags: ["events"],
      auth: "token",
      role: "viewer",
      params: v.object({ id: idParam, name: instanceName }),
      stack: () => recordStack(),
      response: v.object({
        event: v.object({
          id: v.number(),
          stack: v.string(),
          kind: v.string(),
          status: v.string(),
          createdAt: v.string(),
        }),
        outcome: v.object({
          eventId: v.number(),
          instance: v.string(),
          status: v.string(),
          stateVersion: v.optional(v.number()),
          bundle: v.optional(v.string()),
          report: v.optional(v.unknown()),
          log: v.optional(v.string()),
          startedAt: v.string(),
          finishedAt: v.optional(v.string()),
        }),
      }),
    },
    async ({ params }) => {
      // the event's stack was found before authorizing (resolveStack); undefined: no such event
      const stack = recordStack();
      if (stack === undefined)
        throw new GalleyError("NOT_FOUND", `the server has no event #${params.id}`, {
          hint: "GET /v1/stacks/STACK/events lists a stack's events",
        });
      // this instance's outcome alone (an event's other outcomes and their reports are not read)
      const [found] = await ctx.store.listInstanceOutcomes(stack, params.name, {
        before: params.id + 1,
        limit: 1,
      });
      if (found?.eventId !== params.id)
        throw new GalleyError("NOT_FOUND", `event #${params.id} did not run on ${params.name}`, {
          hint: `GET /v1/events/${params.id} lists its instances`,
        });
      const { event, ...outcome } = found;
      return { event, outcome };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/instances/:name/runs/:generation/:seq",
      summary: "One of an agent instance's own runs (a drift run or a job), with its report",
      tags: ["instances"],
      auth: "token",
      role: "viewer",
      params: v.object({
        stack: stackName,
        name: instanceName,
        generation: countParam("an agent's enrollment generation"),
        seq: countParam("a run's number"),
      }),
      stack: (p) => p.stack,
      response: v.object({ stack: v.string(), instance: v.string(), run: v.unknown() }),
    },
    async ({ params }) => {
      // newest first: the run asked is most often a recent one; the store keeps the newest 500 by default
      let run: AgentRunRecord | undefined;
      for (const limit of [20, 100_000]) {
        const runs = await ctx.store.listAgentRuns(params.stack, params.name, { limit });
        run = runs.find((r) => r.generation === params.generation && r.seq === params.seq);
        if (run || runs.length < limit) break;
      }
      if (!run)
        throw new GalleyError(
          "NOT_FOUND",
          `${params.stack}/${params.name} has no agent run ${params.generation}/${params.seq}`,
          { hint: `GET /v1/stacks/${params.stack}/instances/${params.name}/runs lists its runs` },
        );
      return { stack: params.stack, instance: params.name, run: runView(run, true) };
    },
  );
}
