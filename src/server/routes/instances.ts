import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { processSecrets, Secrets, withSecrets } from "../../core/secrets.ts";
import { runStackActionFed } from "../../deploy/feed.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { waitable, waitBody } from "./background.ts";
import { agentSchema, agentView, instanceParams } from "./runs.ts";
import { actionResultSchema, requester, stackParams, withServedStack } from "./stacks.ts";

// A stack's instances over the API: their status (and its history), and starting or stopping
// them with the same lifecycle as `galley instance start|stop`.

const instanceSchema = v.object({
  name: v.string(),
  layers: v.array(v.string()),
  status: v.string(),
  address: v.nullable(v.string()),
  provider: v.string(),
  inService: v.boolean(),
  weight: v.number(),
  updatedAt: v.nullable(v.string()),
});

type InstanceJson = v.InferOutput<typeof instanceSchema>;

// the instances of the stack file, with what the store knows of each (a new one: stopped)
async function instances(ctx: ServerContext, stack: string): Promise<InstanceJson[]> {
  return withServedStack(ctx, stack, { checkRecipes: false, decrypt: false }, async (context) => {
    const records = new Map((await context.store.listInstances(stack)).map((r) => [r.name, r]));
    return context.stack.instances.map((i) => {
      const r = records.get(i.name);
      return {
        name: i.name,
        layers: i.layers,
        status: r?.status ?? "stopped",
        address: r?.address ?? null,
        provider: i.provider.type,
        inService: r?.inService ?? true,
        weight: r?.weight ?? 100,
        updatedAt: r?.updatedAt ?? null,
      };
    });
  });
}

/** Declares the instance routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/instances",
      summary: "A stack's instances with their status",
      tags: ["instances"],
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      response: v.object({ stack: v.string(), instances: v.array(instanceSchema) }),
    },
    async ({ params }) => ({ stack: params.stack, instances: await instances(ctx, params.stack) }),
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/instances/:name",
      summary:
        "One instance with its status history and its agent (generation, connected, last seen, last run)",
      tags: ["instances"],
      auth: "token",
      role: "viewer",
      params: instanceParams,
      stack: (p) => p.stack,
      response: v.object({
        stack: v.string(),
        instance: instanceSchema,
        agent: v.optional(agentSchema),
        history: v.array(
          v.object({ from: v.optional(v.string()), to: v.string(), at: v.string(), reason: v.string() }),
        ),
      }),
    },
    async ({ params }) => {
      const instance = (await instances(ctx, params.stack)).find((i) => i.name === params.name);
      if (!instance)
        throw new GalleyError("NOT_FOUND", `stack ${params.stack} has no instance ${params.name}`, {
          hint: `GET /v1/stacks/${params.stack}/instances lists them`,
        });
      const history = await ctx.store.statusHistory(params.stack, params.name);
      const agent = await agentView(ctx, params.stack, params.name);
      return { stack: params.stack, instance, ...(agent ? { agent } : {}), history };
    },
  );
  for (const kind of ["start", "stop"] as const) {
    defineRoute(
      app,
      ctx,
      {
        method: "post",
        path: `/v1/stacks/:stack/instances/:name/${kind}`,
        summary:
          kind === "start"
            ? "Starts an instance (host, setup, deploy, online, configure everywhere); answers when done; with { wait: false }, 202 with its first event's id"
            : "Stops an instance (shutdown, host stopped, configure on the rest); answers when done; with { wait: false }, 202 with its first event's id",
        tags: ["instances"],
        auth: "token",
        role: "admin",
        action: `instance.${kind}`,
        params: instanceParams,
        stack: (p) => p.stack,
        target: (p) => p.name,
        body: waitBody,
        status: 200,
        response: v.union([actionResultSchema, v.object({ id: v.nullable(v.number()) })]),
      },
      waitable<typeof instanceParams>(ctx, async ({ params, actor }, background) =>
        withSecrets(new Secrets(processSecrets), () =>
          withServedStack(ctx, params.stack, { checkRecipes: kind === "start" }, (context) =>
            runStackActionFed(
              ctx,
              context,
              { kind, instances: [params.name] },
              { log: ctx.log, deployments: { user: requester(actor), log: ctx.log }, ...background },
            ),
          ),
        ),
      ),
    );
  }
}
