import { toJsonSchema } from "@valibot/to-json-schema";
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as v from "valibot";
import { GalleyError } from "../core/errors.ts";
import type { Actor, ServerContext } from "./context.ts";
import {
  auditRequest,
  authenticate,
  authorize,
  noteRoute,
  requirePerson,
  routeNote,
  type ServerEnv,
} from "./auth.ts";
import { requestInvalid } from "./errors.ts";
import type { Role } from "../store/store.ts";
import type { Hono } from "hono";

// Every API route is declared once, with valibot schemas for its path parameters, query, body and
// response. The same declaration validates requests, authorizes them, audits changes and becomes
// the route's operation in the OpenAPI document (GET /v1/openapi.json).

/** The server's Hono app. */
export type ServerApp = Hono<ServerEnv>;

/** An HTTP method a route answers. */
export type Method = "get" | "post" | "put" | "patch" | "delete";

type Schema = v.GenericSchema;
type Out<S> = S extends Schema ? v.InferOutput<S> : undefined;

/** A route's declaration. */
export interface RouteSpec<
  P extends Schema | undefined,
  Q extends Schema | undefined,
  B extends Schema | undefined,
  R extends Schema,
> {
  method: Method;
  /** Hono syntax: /v1/stacks/:stack */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** none: anyone; token: a bearer token or a web session's user or token (with `role`); agent: an agent's channel session */
  auth: "none" | "token" | "agent";
  /** the role the token needs on `stack(params)` (default viewer) */
  role?: Role;
  /**
   * true: the handler calls authorize() itself (the role depends on the query or body); the route
   * still refuses a request without a token
   */
  authorizeInHandler?: boolean;
  /** the stack the request acts on (undefined: every stack, which needs a "*" grant) */
  stack?: (params: Out<P>) => string | undefined;
  /** the audit log's name for the action (default "METHOD /path") */
  action?: string;
  /** the audit log's target: the object acted on */
  target?: (params: Out<P>) => string | undefined;
  params?: P;
  query?: Q;
  body?: B;
  response: R;
  /** the success status (default 200; 201 for POST) */
  status?: ContentfulStatusCode;
  /** the response's media type when it is not JSON (the handler then returns a Response) */
  contentType?: string;
}

/** What a route's handler receives: the validated request and its actor. */
export interface RouteInput<P, Q, B> {
  c: Context<ServerEnv>;
  ctx: ServerContext;
  actor: Actor | undefined;
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  /** adds the target acted on (an id made by the handler) and details to the request's audit entry; never a secret */
  audit(extra: { target?: string; detail?: unknown }): void;
}

/** A route as listed for docs and OpenAPI. */
export interface RouteEntry {
  method: Method;
  path: string;
  summary: string;
  auth: "none" | "token" | "agent";
  role?: Role | undefined;
  spec: RouteSpec<Schema | undefined, Schema | undefined, Schema | undefined, Schema>;
}

const registry = new WeakMap<object, RouteEntry[]>();

/** The routes declared on an app, in declaration order. */
export function routeList(app: ServerApp): RouteEntry[] {
  return [...(registry.get(app) ?? [])];
}

const mutating = new Set<Method>(["post", "put", "patch", "delete"]);

/**
 * Declares a route: validates its params, query and body (400 REQUEST_INVALID naming the field),
 * authenticates and authorizes it, audits it when it changes something, and lists it in OpenAPI.
 * The handler returns the response value (serialized as JSON), or a Response of its own.
 *
 * @example defineRoute(app, ctx, { method: "get", path: "/v1/stacks/:stack", summary: "A stack",
 *   auth: "token", role: "viewer", params: v.object({ stack: v.string() }), stack: (p) => p.stack,
 *   response: stackSchema }, async ({ params }) => …)
 */
export function defineRoute<
  P extends Schema | undefined = undefined,
  Q extends Schema | undefined = undefined,
  B extends Schema | undefined = undefined,
  R extends Schema = Schema,
>(
  app: ServerApp,
  ctx: ServerContext,
  spec: RouteSpec<P, Q, B, R>,
  handler: (input: RouteInput<P, Q, B>) => Promise<v.InferOutput<R> | Response> | v.InferOutput<R> | Response,
): void {
  const entries = registry.get(app) ?? [];
  registry.set(app, entries);
  entries.push({
    method: spec.method,
    path: spec.path,
    summary: spec.summary,
    auth: spec.auth,
    role: spec.role,
    spec: spec as unknown as RouteEntry["spec"],
  });
  const isMutating = mutating.has(spec.method);
  const action = spec.action ?? `${spec.method.toUpperCase()} ${spec.path}`;
  const status = spec.status ?? (spec.method === "post" ? 201 : 200);
  app.on(spec.method.toUpperCase(), spec.path, async (c) => {
    noteRoute(c, { action, mutating: isMutating });
    if (spec.auth !== "none") await authenticate(c, ctx);
    const params = parse(spec.params, c.req.param(), "path") as Out<P>;
    const stack = spec.stack?.(params);
    noteRoute(c, { action, mutating: isMutating, stack, target: spec.target?.(params) });
    const actor = c.get("actor") as Actor | undefined;
    if (spec.auth === "token") {
      if (spec.authorizeInHandler === true) requirePerson(c);
      else authorize(c, stack, spec.role ?? "viewer");
    }
    if (spec.auth === "agent" && actor?.kind !== "agent") agentOnly(actor);
    const query = parse(spec.query, c.req.query(), "query") as Out<Q>;
    const body = (
      spec.body === undefined
        ? undefined
        : parse(spec.body, await readJson(c, bodyOptional(spec.body)), "body")
    ) as Out<B>;
    const audit = (extra: { target?: string; detail?: unknown }) => {
      const note = routeNote(c);
      if (note !== undefined) noteRoute(c, { ...note, ...extra });
    };
    const result = await handler({ c, ctx, actor, params, query, body, audit });
    if (isMutating) await auditRequest(c, ctx, "ok");
    if (result instanceof Response) return result;
    return c.json(result as object, status);
  });
}

function agentOnly(actor: Actor | undefined): never {
  // an agent route refuses tokens as it refuses strangers: only a channel's session opens it
  throw new GalleyError(
    "UNAUTHORIZED",
    actor === undefined ? "this request needs an agent session" : "this route is for agents only",
    { hint: "agents send `Authorization: Agent <session>` (the session their channel's welcome gave)" },
  );
}

function parse(schema: Schema | undefined, value: unknown, where: string): unknown {
  if (schema === undefined) return undefined;
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const path = v.getDotPath(issue);
  const field = path === null ? where : `${where}.${path}`;
  throw requestInvalid(`${field}: ${issue.message}`);
}

// a body schema that accepts undefined (v.optional(…)): the request may come without a body
function bodyOptional(schema: Schema): boolean {
  return v.safeParse(schema, undefined).success;
}

async function readJson(c: Context<ServerEnv>, optional = false): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  // no content type and nothing sent: no body, which an optional body allows
  if (optional && type === "" && (await c.req.text()) === "") return undefined;
  if (!/^application\/json\s*(;|$)/i.test(type))
    throw requestInvalid(
      `the body must be application/json (got ${type === "" ? "no content type" : JSON.stringify(type.slice(0, 100))})`,
    );
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw requestInvalid("the body is not valid JSON");
  }
}

/** Hono's /v1/x/:id{regex} as OpenAPI's /v1/x/{id}. */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z0-9_]+)(\{[^/]*\})?\??/g, "{$1}");
}

function jsonSchema(schema: Schema): Record<string, unknown> {
  const { $schema: _, ...rest } = toJsonSchema(schema, {
    errorMode: "ignore",
    target: "draft-2020-12",
  }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: Schema | undefined, location: "path" | "query"): unknown[] {
  if (schema === undefined) return [];
  const json = jsonSchema(schema);
  const properties = (json.properties ?? {}) as Record<string, unknown>;
  const required = new Set((json.required ?? []) as string[]);
  return Object.entries(properties).map(([name, s]) => ({
    name,
    in: location,
    required: location === "path" || required.has(name),
    schema: s,
  }));
}

/** Every parameter of the path, with its schema when the route declared one (OpenAPI wants them all). */
function pathParameters(routePath: string, schema: Schema | undefined): unknown[] {
  const declared = parameters(schema, "path") as { name: string }[];
  const names = [...routePath.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1] ?? "");
  return names.map(
    (name) =>
      declared.find((p) => p.name === name) ?? {
        name,
        in: "path",
        required: true,
        schema: { type: "string" },
      },
  );
}

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, hint: { type: "string" } },
    },
  },
};

/** The OpenAPI 3.1 document of an app's declared routes. */
export function openApiDocument(
  app: ServerApp,
  info: { title?: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { spec } of routeList(app)) {
    const path = openApiPath(spec.path);
    const errorResponse = {
      description: "error",
      content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
    };
    const responses: Record<string, unknown> = {
      [String(spec.status ?? (spec.method === "post" ? 201 : 200))]: {
        description: spec.summary,
        content: { [spec.contentType ?? "application/json"]: { schema: jsonSchema(spec.response) } },
      },
      "400": errorResponse,
    };
    if (spec.auth !== "none") Object.assign(responses, { "401": errorResponse, "403": errorResponse });
    const operation: Record<string, unknown> = {
      summary: spec.summary,
      operationId: `${spec.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? "").toUpperCase())}`,
      parameters: [...pathParameters(spec.path, spec.params), ...parameters(spec.query, "query")],
      responses,
    };
    if (spec.description !== undefined) operation.description = spec.description;
    if (spec.tags !== undefined) operation.tags = spec.tags;
    if (spec.auth === "token") operation.security = [{ token: [] }, { session: [] }];
    if (spec.auth === "agent") operation.security = [{ agent: [] }];
    if (spec.role !== undefined || spec.auth === "token") operation["x-galley-role"] = spec.role ?? "viewer";
    if (spec.body !== undefined)
      operation.requestBody = {
        required: !bodyOptional(spec.body),
        content: { "application/json": { schema: jsonSchema(spec.body) } },
      };
    paths[path] = { ...paths[path], [spec.method]: operation };
  }
  return {
    openapi: "3.1.0",
    info: { title: info.title ?? "Galley server API", version: info.version },
    paths,
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: {
        token: { type: "http", scheme: "bearer", description: "an admin token (galley token create)" },
        session: {
          type: "apiKey",
          in: "cookie",
          name: "__Host-galley_session",
          description: "a web session (POST /v1/session); changes also need its CSRF token in X-Galley-CSRF",
        },
        agent: {
          type: "apiKey",
          in: "header",
          name: "Authorization",
          description: "`Agent <session>`: an agent's channel session",
        },
      },
    },
  };
}
