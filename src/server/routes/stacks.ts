import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import * as v from "valibot";
import { GalleyError, isGalleyError } from "../../core/errors.ts";
import { processSecrets, Secrets, withSecrets } from "../../core/secrets.ts";
import { runStackActionFed } from "../../deploy/feed.ts";
import { mintEnrollment } from "../../fleet/agent-enrollment.ts";
import { openStack, type StackContext, type StackOpenOptions } from "../../lifecycle/context.ts";
import { stackStatus } from "../../lifecycle/status.ts";
import { serverCaFingerprint } from "../agents/routes.ts";
import { actorName, can } from "../auth.ts";
import type { Actor, ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { waitable, waitBody } from "./background.ts";
import { servedStackNames } from "./served.ts";

export {
  type BackgroundAction,
  backgroundAction,
  backgroundService,
  startInBackground,
  stopBackground,
} from "./background.ts";

// Stacks over the API: list, read, write a stack file (validated as `galley stack up` would read
// it; nothing written when invalid), and bring a stack up or down with the same lifecycle the CLI
// runs. Also the helpers the other route files share: the served stack (background actions are in
// background.ts).

/** A stack name in a path: a stack file's name, never a path (no traversal). */
export const stackName = v.pipe(
  v.string(),
  v.regex(
    /^[a-z][a-z0-9-]{0,62}$/,
    "a stack name: lower-case letters, digits and dashes, starting with a letter",
  ),
);

/** The path parameters of /v1/stacks/:stack. */
export const stackParams = v.object({ stack: stackName });

/** The stack file the server serves as `name`: <kitchen>/stacks/<name>.yaml. */
export function servedStackFile(ctx: ServerContext, name: string): string {
  return path.join(ctx.kitchen, "stacks", `${name}.yaml`);
}

/**
 * Opens the stack the server serves as `name` (<kitchen>/stacks/<name>.yaml), like the CLI's
 * `--stack name` in the kitchen; its `name:` must be its file's. The caller closes its store.
 * This is where the server's stacks get what only the server has (its agents, once instances
 * reach them through it).
 */
export async function openServedStack(
  ctx: ServerContext,
  name: string,
  options: StackOpenOptions = {},
): Promise<StackContext> {
  const file = servedStackFile(ctx, name);
  const exists = await fs.stat(file).then(
    (s) => s.isFile(),
    () => false,
  );
  if (!exists)
    throw new GalleyError("NOT_FOUND", `the server has no stack ${name}`, {
      hint: "GET /v1/stacks lists them; PUT /v1/stacks/NAME writes one",
    });
  const context = await openStack(file, options).catch((error: unknown) => {
    throw withoutKitchenPath(ctx, error);
  });
  if (context.stack.name !== name) {
    await context.store.close();
    throw new GalleyError("STACK_INVALID", `stacks/${name}.yaml names its stack ${context.stack.name}`, {
      hint: `the server serves stacks/NAME.yaml as stack NAME: set name: ${name} (or rename the file)`,
    });
  }
  // agent instances are reached through this server's agents, and set up with a token it mints
  context.agents = ctx.agents;
  context.agentEnrollment = async (target) => ({
    serverUrl: ctx.agentUrl ?? "",
    token: await mintEnrollment(ctx.store, {
      ...target,
      caFingerprint: serverCaFingerprint(ctx),
      ttlMs: ctx.settings.enrollmentTtlMs,
    }),
  });
  return context;
}

/** Runs `fn` with the served stack `name`, closing its store after. */
export async function withServedStack<T>(
  ctx: ServerContext,
  name: string,
  options: StackOpenOptions,
  fn: (context: StackContext) => Promise<T>,
): Promise<T> {
  const context = await openServedStack(ctx, name, options);
  try {
    return await fn(context);
  } catch (error) {
    throw withoutKitchenPath(ctx, error);
  } finally {
    await context.store.close();
  }
}

/** The error with the kitchen's path taken out of its message and hint: API clients get stacks/x.yaml. */
export function withoutKitchenPath(ctx: ServerContext, error: unknown): unknown {
  if (!isGalleyError(error)) return error;
  const hint = error.hint === undefined ? undefined : relative(ctx, error.hint);
  if (relative(ctx, error.message) === error.message && hint === error.hint) return error;
  return new GalleyError(error.code, relative(ctx, error.message), {
    ...(hint === undefined ? {} : { hint }),
    cause: error,
  });
}

/** Who the store records as having asked: "token:<name>". */
export function requester(actor: Actor | undefined): string {
  return actorName(actor);
}

const stackOfRequest = new AsyncLocalStorage<string | undefined>();

/**
 * For routes whose stack is not in their path (/v1/events/:id): finds it before the route
 * authorizes, so a token's grant on that stack is what counts. `stackOf` reads the record.
 * The route then declares `stack: recordStack`.
 */
export function resolveStack(
  app: ServerApp,
  pattern: string,
  stackOf: (id: number) => Promise<string | undefined>,
): void {
  app.use(pattern, async (c, next) => {
    const id = Number(c.req.param("id"));
    const stack = Number.isSafeInteger(id) && id > 0 ? await stackOf(id) : undefined;
    return stackOfRequest.run(stack, next);
  });
}

/** The stack `resolveStack` found for this request (undefined: no such record; then only "*" grants pass). */
export function recordStack(): string | undefined {
  return stackOfRequest.getStore();
}

/** A record's id in a path. */
export const idParam = v.pipe(
  v.string(),
  v.regex(/^[1-9][0-9]{0,14}$/, "a record id: a whole number"),
  v.transform(Number),
);

const stackEntry = v.object({ name: v.string(), file: v.string() });

const eventRecordSchema = v.object({
  id: v.number(),
  stack: v.string(),
  kind: v.string(),
  status: v.string(),
  stateVersion: v.optional(v.nullable(v.number())),
  createdAt: v.string(),
});

/** A stack's status (`galley stack status --json`, plus whether it was ever brought up). */
/** An agent's last run as the API shows it (`galley stack status --json`, the panel's summary). */
export const lastRunSchema = v.object({
  seq: v.number(),
  kind: v.string(),
  mode: v.string(),
  status: v.string(),
  changed: v.number(),
  failed: v.number(),
  finishedAt: v.string(),
});

/** A stack's status as the API shows it. */
export const stackStatusSchema = v.object({
  stack: v.string(),
  stateVersion: v.nullable(v.number()),
  applied: v.boolean(),
  instances: v.array(
    v.object({
      name: v.string(),
      layers: v.array(v.string()),
      status: v.string(),
      address: v.nullable(v.string()),
      updatedAt: v.string(),
    }),
  ),
  events: v.array(eventRecordSchema),
  agents: v.array(
    v.object({
      instance: v.string(),
      generation: v.number(),
      lastSeenAt: v.nullable(v.string()),
      lastRun: v.nullable(lastRunSchema),
    }),
  ),
});

/** The closing JSON of a lifecycle command (`galley stack up --json`), as the lifecycle gives it. */
export const lifecycleOutcomeSchema = v.object({
  stack: v.string(),
  stateVersion: v.nullable(v.number()),
  instances: v.array(
    v.object({
      name: v.string(),
      layers: v.array(v.string()),
      status: v.string(),
      address: v.nullable(v.string()),
      inService: v.boolean(),
      weight: v.number(),
    }),
  ),
  events: v.array(v.object({ ...eventRecordSchema.entries, outcomes: v.record(v.string(), v.unknown()) })),
});

/** What a stack action (up, down, start, stop) did: the outcome, first deployments, the CLI's exit code. */
export const actionResultSchema = v.object({
  outcome: lifecycleOutcomeSchema,
  deployments: v.array(v.object({ id: v.number(), app: v.string(), status: v.string() })),
  exitCode: v.number(),
});

/** Declares the stack routes. */
export function register(app: ServerApp, ctx: ServerContext): void {
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks",
      summary: "The stacks the server serves (stacks/*.yaml) that the token may see",
      tags: ["stacks"],
      description:
        "Any valid token may list; the list holds only the stacks its grants name (all with a * grant).",
      auth: "token",
      // any token may ask (a token for one stack has no grant on "every stack"); it sees its own
      authorizeInHandler: true,
      response: v.object({ stacks: v.array(stackEntry) }),
    },
    async ({ actor }) => {
      // not the stacks' attribute files (secrets:) kept beside them
      const stacks = (await servedStackNames(ctx.kitchen))
        .filter((name) => can(actor, name, "viewer"))
        .map((name) => ({ name, file: `stacks/${name}.yaml` }));
      return { stacks };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/stacks/:stack",
      summary: "A stack: its file's text and its instances with their status",
      tags: ["stacks"],
      auth: "token",
      role: "viewer",
      params: stackParams,
      stack: (p) => p.stack,
      response: v.object({
        name: v.string(),
        file: v.string(),
        content: v.string(),
        status: v.nullable(stackStatusSchema),
        invalid: v.optional(v.object({ code: v.string(), message: v.string() })),
      }),
    },
    async ({ params }) => {
      const file = servedStackFile(ctx, params.stack);
      const content = await fs.readFile(file, "utf8").catch(() => {
        throw new GalleyError("NOT_FOUND", `the server has no stack ${params.stack}`, {
          hint: "GET /v1/stacks lists them",
        });
      });
      try {
        const status = await withServedStack(
          ctx,
          params.stack,
          { checkRecipes: false, decrypt: false },
          stackStatus,
        );
        return { name: params.stack, file: `stacks/${params.stack}.yaml`, content, status };
      } catch (error) {
        if (!isGalleyError(error)) throw error;
        // a broken file can still be read, to be fixed
        return {
          name: params.stack,
          file: `stacks/${params.stack}.yaml`,
          content,
          status: null,
          invalid: { code: error.code, message: relative(ctx, error.message) },
        };
      }
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "put",
      path: "/v1/stacks/:stack",
      summary:
        "Writes a stack file (YAML text), validated as galley stack up reads it; nothing is written when invalid",
      tags: ["stacks"],
      auth: "token",
      role: "admin",
      action: "stack.write",
      params: stackParams,
      stack: (p) => p.stack,
      body: v.object({ content: v.pipe(v.string(), v.minLength(1, "the stack file's YAML text")) }),
      response: v.object({ name: v.string(), file: v.string(), created: v.boolean() }),
    },
    async ({ params, body }) => writeStackFile(ctx, params.stack, body.content),
  );
  for (const kind of ["up", "down"] as const) {
    defineRoute(
      app,
      ctx,
      {
        method: "post",
        path: `/v1/stacks/:stack/${kind}`,
        summary:
          kind === "up"
            ? "Starts what should run (galley stack up); answers when done, with the CLI's --json outcome; with { wait: false }, 202 with its first event's id"
            : "Stops every instance that runs (galley stack down); answers when done; with { wait: false }, 202 with its first event's id",
        tags: ["stacks"],
        auth: "token",
        role: "admin",
        action: `stack.${kind}`,
        params: stackParams,
        stack: (p) => p.stack,
        body: waitBody,
        status: 200,
        response: v.union([actionResultSchema, v.object({ id: v.nullable(v.number()) })]),
      },
      waitable<typeof stackParams>(ctx, async ({ params, actor }, background) =>
        withSecrets(new Secrets(processSecrets), () =>
          withServedStack(ctx, params.stack, { checkRecipes: kind !== "down" }, (context) =>
            runStackActionFed(
              ctx,
              context,
              { kind },
              { log: ctx.log, deployments: { user: requester(actor), log: ctx.log }, ...background },
            ),
          ),
        ),
      ),
    );
  }
}

/**
 * Writes <kitchen>/stacks/<name>.yaml from YAML text: first to a temporary file beside it, opened
 * as the lifecycle opens a stack (schema, references, recipes, instance names), then renamed over
 * the file, so an invalid text changes nothing and a valid one replaces the file at once.
 */
export async function writeStackFile(
  ctx: ServerContext,
  name: string,
  content: string,
): Promise<{ name: string; file: string; created: boolean }> {
  const file = servedStackFile(ctx, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temp = path.join(path.dirname(file), `.${name}.${randomBytes(6).toString("hex")}.yaml`);
  const created = !(await fs.stat(file).then(
    () => true,
    () => false,
  ));
  await fs.writeFile(temp, content, { mode: 0o644 });
  try {
    const context = await openStack(temp, { decrypt: false }).catch((error: unknown) => {
      if (isGalleyError(error))
        throw new GalleyError(error.code, relative(ctx, error.message.replaceAll(temp, file)), {
          ...(error.hint === undefined ? {} : { hint: error.hint }),
        });
      throw error;
    });
    await context.store.close();
    if (context.stack.name !== name)
      throw new GalleyError(
        "STACK_INVALID",
        `stacks/${name}.yaml:1: name: "${context.stack.name}" is not ${name}`,
        {
          hint: `the server serves stacks/NAME.yaml as stack NAME: set name: ${name}`,
        },
      );
    await fs.rename(temp, file);
  } finally {
    await fs.rm(temp, { force: true });
  }
  return { name, file: `stacks/${name}.yaml`, created };
}

// messages name files relative to the kitchen: an API client has no business with its path
function relative(ctx: ServerContext, message: string): string {
  return message.replaceAll(`${ctx.kitchen}${path.sep}`, "").replaceAll(ctx.kitchen, ".");
}
