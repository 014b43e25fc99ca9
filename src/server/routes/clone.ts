import * as fs from "node:fs/promises";
import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { cloneStack } from "../../stacks/clone.ts";
import { authorize } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { openServedStack, servedStackFile, stackName, stackParams, withoutKitchenPath } from "./stacks.ts";

// `galley stack clone` over the API: the server's stacks/SOURCE.yaml copied to stacks/NAME.yaml
// with new instance names (SSH instances, which name existing machines, left out), checked as
// the server opens a stack; a clone that would not open (an instance name another stack has) is
// removed and refused. Admin on both stacks: the one copied and the one made.

/** Declares POST /v1/stacks/:stack/clone. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/stacks/:stack/clone",
      summary:
        "Copies a stack file under a new name with new instance names (galley stack clone); SSH instances are left out",
      tags: ["stacks"],
      description:
        "Needs admin on the stack copied and on the new name. A name the server serves already is refused (STATE_INVALID, 409); nothing is written when the copy would not load.",
      auth: "token",
      role: "admin",
      action: "stack.clone",
      params: stackParams,
      stack: (p) => p.stack,
      body: v.strictObject({ name: stackName }),
      response: v.object({
        name: v.string(),
        file: v.string(),
        from: v.string(),
        /** old instance name → new one */
        instances: v.record(v.string(), v.string()),
        /** SSH instances, as `name (address)` */
        leftOut: v.array(v.string()),
      }),
    },
    async ({ c, params, body, audit }) => {
      // the audit entry names the new stack, refused or not
      audit({ target: body.name, detail: { from: params.stack } });
      authorize(c, body.name, "admin");
      const from = servedStackFile(ctx, params.stack);
      const to = servedStackFile(ctx, body.name);
      const exists = (file: string) =>
        fs.stat(file).then(
          (s) => s.isFile(),
          () => false,
        );
      if (!(await exists(from)))
        throw new GalleyError("NOT_FOUND", `the server has no stack ${params.stack}`, {
          hint: "GET /v1/stacks lists them",
        });
      if (await exists(to))
        throw new GalleyError("STATE_INVALID", `the server has a stack ${body.name} already`, {
          hint: "name a new stack: GET /v1/stacks lists those that exist",
        });
      const result = await cloneStack({ from, to, name: body.name }).catch((error: unknown) => {
        throw withoutKitchenPath(ctx, error);
      });
      try {
        // the copy must open as the server opens stacks: a clash of instance names is refused now
        const context = await openServedStack(ctx, body.name, { checkRecipes: false, decrypt: false });
        await context.store.close();
      } catch (error) {
        await fs.rm(to, { force: true });
        throw error;
      }
      return {
        name: body.name,
        file: `stacks/${body.name}.yaml`,
        from: `stacks/${params.stack}.yaml`,
        instances: result.instances,
        leftOut: result.leftOut,
      };
    },
  );
}
