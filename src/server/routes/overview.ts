import * as v from "valibot";
import { isGalleyError } from "../../core/errors.ts";
import type { DeploymentRecord } from "../../store/store.ts";
import { can } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { servedStackNames } from "./served.ts";
import { stackParams } from "./stacks.ts";
import { stackSummary, type TakenNames, takenNames } from "./summary.ts";
import { overviewStackSchema, summarySchema } from "./summary-schema.ts";

// The web panel's reads of stacks: every stack the caller may view at a glance (GET /v1/overview)
// and one stack whole (GET /v1/stacks/:stack/summary); summary.ts builds them.

type OverviewStack = v.InferOutput<typeof overviewStackSchema>;

async function overviewOf(ctx: ServerContext, name: string, taken: TakenNames): Promise<OverviewStack> {
  const summary = await stackSummary(ctx, name, { taken });
  const counts: Record<string, number> = {};
  for (const i of summary.instances) counts[i.status] = (counts[i.status] ?? 0) + 1;
  return {
    name,
    file: summary.file,
    ...(summary.invalid ? { invalid: summary.invalid } : {}),
    stateVersion: summary.stateVersion,
    layers: summary.layers.map((l) => ({ name: l.name, instances: l.instances })),
    counts,
    apps: summary.apps.map((a) => {
      const d = a.deployed as DeploymentRecord | null;
      return {
        name: a.name,
        deployed: d && {
          id: d.id,
          revision: d.revision,
          requested: d.requested,
          status: d.status,
          finishedAt: d.finishedAt ?? null,
        },
      };
    }),
    events: summary.events,
  };
}

// at most this many stacks are read at once (each opens its file and the store)
const parallel = 8;

async function inTurn<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
  return results;
}

/** Declares GET /v1/overview and GET /v1/stacks/:stack/summary. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/overview",
      summary:
        "Every stack the caller may view at a glance: layers, instance counts by status, apps' deployed revisions, last events",
      tags: ["stacks"],
      description:
        "Any valid token or user may ask; only the stacks its grants let it view are listed. A stack file that does not load is listed with `invalid` and what the store knows.",
      auth: "token",
      // any caller may ask (one with grants on one stack has no grant on "every stack"): it sees its own
      authorizeInHandler: true,
      response: v.object({ stacks: v.array(overviewStackSchema) }),
    },
    async ({ actor }) => {
      const names = (await servedStackNames(ctx.kitchen)).filter((name) => can(actor, name, "viewer"));
      const taken = await takenNames(ctx);
      const stacks = await inTurn(names, (name) =>
        // a file removed meanwhile is left out
        overviewOf(ctx, name, taken).catch((error: unknown) => {
          if (isGalleyError(error) && error.code === "NOT_FOUND") return undefined;
          throw error;
        }),
      );
      return { stacks: stacks.filter((s) => s !== undefined) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/summary",
      summary:
        "A stack as the panel shows it: layers, instances (status, transport, scaling, agent), apps (deployed, A/B), last events and deployments",
      tags: ["stacks"],
      description:
        "A stack file that does not load is still summarized: `invalid: { code, message }`, and the layers, instances and apps the store knows (the stack as last applied).",
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      response: summarySchema,
    },
    async ({ params }) => stackSummary(ctx, params.stack),
  );
}
