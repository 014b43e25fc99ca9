import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import type { AgentRunRecord } from "../../store/store.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { stackName, withServedStack } from "./stacks.ts";

// An agent instance's own runs over the API (drift runs and jobs, as its agent reported them):
// newest first, the report itself only when asked (?report=1). And the instance's agent as
// GET /v1/stacks/:stack/instances/:name shows it: generation, connected, last seen, last run.

/** The path parameters of /v1/stacks/:stack/instances/:name. */
export const instanceParams = v.object({
  stack: stackName,
  name: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,62}$/, "an instance name")),
});

const runSchema = v.object({
  seq: v.number(),
  generation: v.number(),
  kind: v.string(),
  mode: v.string(),
  status: v.picklist(["ok", "failed", "drift"]),
  changed: v.number(),
  failed: v.number(),
  bundle: v.optional(v.string()),
  startedAt: v.string(),
  finishedAt: v.string(),
  receivedAt: v.string(),
  report: v.optional(v.unknown()),
});

/** An instance's agent as the API shows it. */
export const agentSchema = v.object({
  generation: v.number(),
  enrolledAt: v.string(),
  connected: v.boolean(),
  lastSeenAt: v.nullable(v.string()),
  lastRun: v.nullable(
    v.object({ seq: v.number(), kind: v.string(), status: v.string(), finishedAt: v.string() }),
  ),
});

/** A stored run as the API shows it: without its stack and instance, its report only when asked. */
export function runView(run: AgentRunRecord, withReport: boolean): v.InferOutput<typeof runSchema> {
  const { stack: _stack, instance: _instance, report, bundle, ...rest } = run;
  return {
    ...rest,
    ...(bundle === undefined ? {} : { bundle }),
    ...(withReport && report !== undefined ? { report } : {}),
  };
}

/** The instance's agent (undefined: none enrolled): its generation, connection and last run. */
export async function agentView(
  ctx: ServerContext,
  stack: string,
  instance: string,
): Promise<v.InferOutput<typeof agentSchema> | undefined> {
  const agent = await ctx.store.getAgent(stack, instance);
  if (!agent) return undefined;
  const live = ctx.agents
    .connections()
    .find((a) => a.stack === stack && a.instance === instance && a.generation === agent.generation);
  const [last] = await ctx.store.listAgentRuns(stack, instance, { limit: 1 });
  return {
    generation: agent.generation,
    enrolledAt: agent.enrolledAt,
    connected: live !== undefined,
    lastSeenAt: live?.lastSeenAt ?? agent.lastSeenAt ?? null,
    lastRun: last
      ? { seq: last.seq, kind: last.kind, status: last.status, finishedAt: last.finishedAt }
      : null,
  };
}

/** Declares GET /v1/stacks/:stack/instances/:name/runs. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/instances/:name/runs",
      summary:
        "An agent instance's own runs (drift runs and jobs), newest first; each run's report with ?report=1",
      tags: ["instances"],
      auth: "token",
      role: "viewer",
      params: instanceParams,
      stack: (p) => p.stack,
      query: v.object({
        limit: v.optional(
          v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,3}$/, "a number from 1 to 9999"), v.transform(Number)),
        ),
        report: v.optional(v.picklist(["0", "1"])),
      }),
      response: v.object({
        stack: v.string(),
        instance: v.string(),
        agent: v.nullable(agentSchema),
        runs: v.array(runSchema),
      }),
    },
    async ({ params, query }) => {
      const known = await withServedStack(
        ctx,
        params.stack,
        { checkRecipes: false, decrypt: false },
        async (context) => context.stack.instances.some((i) => i.name === params.name),
      );
      const agent = await agentView(ctx, params.stack, params.name);
      if (!known && !agent)
        throw new GalleyError("NOT_FOUND", `stack ${params.stack} has no instance ${params.name}`, {
          hint: `GET /v1/stacks/${params.stack}/instances lists them`,
        });
      const runs = await ctx.store.listAgentRuns(params.stack, params.name, { limit: query.limit ?? 20 });
      return {
        stack: params.stack,
        instance: params.name,
        agent: agent ?? null,
        runs: runs.map((run) => runView(run, query.report === "1")),
      };
    },
  );
}
