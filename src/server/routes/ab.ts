import * as v from "valibot";
import type { DeployRequest } from "../../deploy/request.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { deployInBackground, runFields } from "./deployments.ts";
import { stackName, withServedStack } from "./stacks.ts";

// The end of an A/B deployment over the API (galley ab promote|abort|status): promote and abort are
// deployments like any other, run by the same code as the CLI's (src/deploy/ab-end.ts), 202 with
// the deployment's id once its record exists; no A/B under way is refused at once.

const appParams = v.object({ stack: stackName, app: stackName });

/** Declares the A/B routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack/apps/:app/ab",
      summary:
        "Where an app's A/B stands (galley ab status): the deployment under way, its instances, the weights",
      tags: ["deployments"],
      auth: "token",
      role: "viewer",
      params: appParams,
      stack: (p) => p.stack,
      response: v.object({ ab: v.object({ app: v.string(), weights: v.record(v.string(), v.number()) }) }),
    },
    async ({ params }) => {
      const { abStatus } = await import("../../deploy/ab-end.ts");
      return {
        ab: await withServedStack(ctx, params.stack, { checkRecipes: false, decrypt: false }, (context) =>
          abStatus(context, params.app),
        ),
      };
    },
  );
  for (const end of ["promote", "abort"] as const) {
    defineRoute(
      app,
      ctx,
      {
        method: "post",
        path: `/v1/stacks/:stack/apps/:app/ab/${end}`,
        summary:
          end === "promote"
            ? "Promotes the app's A/B (galley ab promote): B to every other instance with a strategy, then equal weights; 202 with the deployment's id"
            : "Aborts the app's A/B (galley ab abort): B's instances back to A, then equal weights; 202 with the deployment's id",
        tags: ["deployments"],
        auth: "token",
        role: "deployer",
        action: `ab.${end}`,
        params: appParams,
        stack: (p) => p.stack,
        target: (p) => p.app,
        body: v.strictObject({ ...runFields }),
        status: 202,
        response: v.object({ id: v.number() }),
      },
      async ({ params, body, actor }) => {
        const [{ runSettings }, { parseSize }, abEnd] = await Promise.all([
          import("../../deploy/ask.ts"),
          import("../../deploy/strategies/sizes.ts"),
          import("../../deploy/ab-end.ts"),
        ]);
        // bad options are refused before anything starts
        const settings = await runSettings(body);
        const size = (flag: string, text: string | undefined, min: 0 | 1) =>
          text === undefined ? undefined : parseSize(flag, text, min);
        const sizes = {
          batch: size("--batch", body.batch, 1),
          maxUnavailable: size("--max-unavailable", body["max-unavailable"], 1),
          maxFail: size("--max-fail", body["max-fail"], 0),
        };
        const id = await deployInBackground(
          ctx,
          params.stack,
          actor,
          async () => ({ app: params.app, strategy: body.strategy ?? "rolling", params: sizes, ...settings }),
          (request: DeployRequest) => (end === "promote" ? abEnd.promoteAb : abEnd.abortAb)(request),
        );
        return { id };
      },
    );
  }
}
