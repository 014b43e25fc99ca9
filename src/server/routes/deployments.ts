import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { deploymentExitCode } from "../../deploy/actions.ts";
import { withRunFeed } from "../../deploy/feed.ts";
import { type DeployOptions, deployRequestOf, rollbackRequestOf, runSettings } from "../../deploy/ask.ts";
import type { DeployRequest } from "../../deploy/request.ts";
import type { StackContext } from "../../lifecycle/context.ts";
import type { DeploymentDetail } from "../../store/store.ts";
import type { Actor, ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { backgroundSchema } from "./events.ts";
import {
  backgroundAction,
  idParam,
  openServedStack,
  recordStack,
  requester,
  resolveStack,
  stackName,
  stackParams,
  startInBackground,
  withServedStack,
} from "./stacks.ts";

// Deployments over the API, by the same rollout controller as `galley deploy`: a stack's
// deployments, one with its steps, and deploying, rolling back or resuming: 202 with the
// deployment's id once it is recorded (a lock held or an A/B under way is refused at once).

// the CLI's flags as JSON: "25%" or 2 alike
const flag = v.pipe(
  v.union([v.string(), v.number()]),
  v.transform((x) => String(x)),
);

/** The run options of a deployment (the CLI's flags by name). */
export const runFields = {
  strategy: v.optional(v.picklist(["cutover", "pilot", "parallel", "rolling"])),
  batch: v.optional(flag),
  "max-unavailable": v.optional(flag),
  "max-fail": v.optional(flag),
  deadline: v.optional(flag),
  forks: v.optional(flag),
  wait: v.optional(flag),
};

const deployBody = v.strictObject({
  app: v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,62}$/, "an app name")),
  revision: v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(256))),
  ...runFields,
  ab: v.optional(flag),
  attributes: v.optional(v.record(v.string(), v.unknown())),
  plan: v.optional(v.boolean()),
});

const rollbackBody = v.strictObject({ to: v.optional(flag), ...runFields });

const deploymentSchema = v.object({
  id: v.number(),
  stack: v.string(),
  app: v.string(),
  revision: v.string(),
  status: v.string(),
  strategy: v.string(),
});

const limitQuery = v.object({
  app: v.optional(stackName),
  limit: v.optional(
    v.pipe(v.string(), v.regex(/^[1-9][0-9]{0,3}$/, "a number from 1 to 9999"), v.transform(Number)),
  ),
});

const started = v.object({ id: v.number() });

/** Runs a deployment request on after the answer: 202 with its id once its record exists. */
export function deployInBackground(
  ctx: ServerContext,
  stack: string,
  actor: Actor | undefined,
  build: (context: StackContext) => Promise<Omit<DeployRequest, "context">>,
  run?: (request: DeployRequest) => Promise<DeploymentDetail>,
): Promise<number> {
  return startInBackground(ctx, "deployment", async (started, signal) => {
    const context = await openServedStack(ctx, stack);
    try {
      const { deploy } = await import("../../deploy/controller.ts");
      const detail = await withRunFeed(
        { store: context.store, log: ctx.log, kitchen: ctx.kitchen },
        stack,
        async (feed) => {
          const request: DeployRequest = feed.deployment({
            ...(await build(context)),
            context,
            user: requester(actor),
            log: ctx.log,
            signal,
            onCreated: (record) => started(record.id),
          });
          return (run ?? deploy)(request);
        },
      );
      return {
        exitCode: deploymentExitCode(detail),
        result: { status: detail.status },
      };
    } finally {
      await context.store.close();
    }
  });
}

/** Declares the deployment routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  resolveStack(app, "/v1/deployments/:id", async (id) => (await ctx.store.getDeployment(id))?.stack);
  resolveStack(app, "/v1/deployments/:id/*", async (id) => (await ctx.store.getDeployment(id))?.stack);
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/deployments",
      summary: "A stack's deployments, newest first (of one app with ?app=)",
      tags: ["deployments"],
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      query: limitQuery,
      response: v.object({ stack: v.string(), deployments: v.array(deploymentSchema) }),
    },
    async ({ params, query }) => ({
      stack: params.stack,
      deployments: await ctx.store.listDeployments(params.stack, {
        ...(query.app ? { app: query.app } : {}),
        limit: query.limit ?? 20,
      }),
    }),
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/deployments/:id",
      summary: "One deployment with its steps, batch by batch; `action`: its run on this server",
      tags: ["deployments"],
      auth: "token",
      role: "viewer",
      params: v.object({ id: idParam }),
      stack: () => recordStack(),
      response: v.object({ deployment: deploymentSchema, action: v.optional(backgroundSchema) }),
    },
    async ({ params }) => {
      const deployment = await ctx.store.getDeployment(params.id);
      if (!deployment)
        throw new GalleyError("NOT_FOUND", `the server has no deployment #${params.id}`, {
          hint: "GET /v1/stacks/STACK/deployments lists a stack's deployments",
        });
      const action = backgroundAction(ctx, `deployment:${deployment.id}`);
      return { deployment, ...(action ? { action } : {}) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/stacks/:stack/deployments",
      summary:
        "Deploys an app (galley deploy; the body holds its options by flag name); 202 with the deployment's id, or 200 with the plan when plan is true",
      tags: ["deployments"],
      auth: "token",
      role: "deployer",
      action: "deploy",
      params: stackParams,
      stack: (p) => p.stack,
      body: deployBody,
      status: 202,
      response: v.union([started, v.object({ plan: v.unknown() })]),
    },
    async ({ c, params, body, actor }) => {
      const { app: name, attributes, plan, ...rest } = body;
      const options: DeployOptions = {
        ...rest,
        ...(attributes ? { attributes: { label: "the deployment's attributes", values: attributes } } : {}),
      };
      if (plan) {
        const { planDeployment } = await import("../../deploy/controller.ts");
        const answer = await withServedStack(ctx, params.stack, {}, async (context) =>
          planDeployment({ ...(await deployRequestOf(name, options)), context }),
        );
        return c.json({ plan: answer }, 200);
      }
      // bad options are refused before anything starts
      const request = await deployRequestOf(name, options);
      return { id: await deployInBackground(ctx, params.stack, actor, async () => request) };
    },
  );
  const rollback = (
    stack: string,
    app: string,
    body: v.InferOutput<typeof rollbackBody>,
    actor: Actor | undefined,
  ) => deployInBackground(ctx, stack, actor, (context) => rollbackRequestOf(context, app, body));
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/stacks/:stack/apps/:app/rollback",
      summary:
        "Rolls an app back (galley rollback): to `to`, else the deployment before the current; 202 with its id",
      tags: ["deployments"],
      auth: "token",
      role: "deployer",
      action: "rollback",
      params: v.object({ stack: stackName, app: stackName }),
      stack: (p) => p.stack,
      target: (p) => p.app,
      body: rollbackBody,
      status: 202,
      response: started,
    },
    async ({ params, body, actor }) => {
      await runSettings(body);
      return { id: await rollback(params.stack, params.app, body, actor) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/deployments/:id/rollback",
      summary:
        "Rolls its app back to this deployment's release (galley rollback --to ID); 202 with the new deployment's id",
      tags: ["deployments"],
      auth: "token",
      role: "deployer",
      action: "rollback",
      params: v.object({ id: idParam }),
      stack: () => recordStack(),
      target: (p) => `deployment #${p.id}`,
      body: v.strictObject({ ...runFields }),
      status: 202,
      response: started,
    },
    async ({ params, body, actor }) => {
      const target = await ctx.store.getDeployment(params.id);
      if (!target)
        throw new GalleyError("NOT_FOUND", `the server has no deployment #${params.id}`, {
          hint: "GET /v1/stacks/STACK/deployments lists a stack's deployments",
        });
      await runSettings(body);
      return { id: await rollback(target.stack, target.app, { ...body, to: String(target.id) }, actor) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/deployments/:id/resume",
      summary: "Finishes a deployment its process left (galley deployment resume); 202 with its id",
      tags: ["deployments"],
      auth: "token",
      role: "deployer",
      action: "deployment.resume",
      params: v.object({ id: idParam }),
      stack: () => recordStack(),
      target: (p) => `deployment #${p.id}`,
      status: 202,
      response: started,
    },
    async ({ params, actor }) => {
      const found = await ctx.store.getDeployment(params.id);
      if (!found)
        throw new GalleyError("NOT_FOUND", `the server has no deployment #${params.id}`, {
          hint: "GET /v1/stacks/STACK/deployments lists a stack's deployments",
        });
      const { resumeDeployment } = await import("../../deploy/controller.ts");
      const id = await deployInBackground(
        ctx,
        found.stack,
        actor,
        async () => ({ app: found.app, strategy: found.strategy, params: {} }),
        (request) => resumeDeployment({ ...request, id: found.id }),
      );
      return { id };
    },
  );
}
