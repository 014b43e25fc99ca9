import { Hono } from "hono";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import * as v from "valibot";
import { GalleyError, isGalleyError } from "../core/errors.ts";
import { auditRequest, routeNote, type ServerEnv } from "./auth.ts";
import type { ServerContext } from "./context.ts";
import { errorResponse } from "./errors.ts";
import { defineRoute, openApiDocument, type ServerApp } from "./openapi.ts";

// The server's HTTP application: the core routes (health, OpenAPI), every area's routes, one JSON
// error handler for all of them, and the request body limit.

/** A function that declares an area's routes (src/server/routes/<area>.ts exports one as `register`). */
export type Registrar = (app: ServerApp, ctx: ServerContext) => void;

/** The largest request body the API accepts. */
export const maxBodyBytes = 1024 * 1024;

/** The API's version, in the OpenAPI document. */
export const apiVersion = "1";

/**
 * The server's Hono app with the core routes and each registrar's routes.
 *
 * @example const app = createApp(ctx, [registerTokens, registerStacks])
 */
export function createApp(ctx: ServerContext, registrars: Registrar[]): ServerApp {
  const app: ServerApp = new Hono<ServerEnv>();
  app.use(
    "*",
    bodyLimit({
      maxSize: maxBodyBytes,
      onError: () => {
        throw new GalleyError("REQUEST_TOO_LARGE", `the request body is over ${maxBodyBytes} bytes`, {
          hint: "send a smaller body",
        });
      },
    }),
  );
  app.onError(async (error, c) => {
    const known = toGalleyError(error);
    if (known === undefined) ctx.log(`error: ${c.req.method} ${c.req.path}: ${error.stack ?? String(error)}`);
    const { status, body } = errorResponse(known ?? error);
    if (
      known !== undefined &&
      (status === 401 || status === 403 || routeNote(c)?.mutating === true) &&
      !sessionProbe(c, status)
    ) {
      try {
        await auditRequest(c, ctx, "refused", `${known.code}: ${known.message}`);
      } catch (auditError) {
        ctx.log(`error: the audit log refused an entry: ${String(auditError)}`);
      }
    }
    // the rest of a refused body is not read: the client must not reuse this connection
    if (status === 413) c.header("connection", "close");
    return c.json(body, status);
  });
  app.notFound((c) => {
    const { status, body } = errorResponse(
      new GalleyError("NOT_FOUND", `no route ${c.req.method} ${c.req.path.slice(0, 200)}`, {
        hint: "see GET /v1/openapi.json for the API's routes",
      }),
    );
    return c.json(body, status);
  });
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/health",
      summary: "Whether the server answers",
      auth: "none",
      response: v.object({ ok: v.literal(true), server: v.string() }),
    },
    () => ({ ok: true as const, server: ctx.id }),
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/openapi.json",
      summary: "This API's OpenAPI 3.1 document",
      auth: "none",
      response: v.record(v.string(), v.unknown()),
    },
    () => openApiDocument(app, { version: apiVersion }),
  );
  for (const register of registrars) register(app, ctx);
  return app;
}

/** A GalleyError for what the app may throw; undefined for a bug. */
function toGalleyError(error: unknown): GalleyError | undefined {
  if (isGalleyError(error)) return error;
  if (error instanceof HTTPException && error.status < 500) {
    const code =
      error.status === 413 ? "REQUEST_TOO_LARGE" : error.status === 401 ? "UNAUTHORIZED" : "REQUEST_INVALID";
    return new GalleyError(code, `the request was refused (HTTP ${error.status})`);
  }
  return undefined;
}

/**
 * The panel's "am I logged in?" (GET /v1/session with no credential at all) answered 401: not an
 * attempt to get in, so not a refusal for the audit log (every page load before a login made one).
 */
function sessionProbe(c: Context, status: number): boolean {
  return (
    status === 401 &&
    c.req.method === "GET" &&
    c.req.path === "/v1/session" &&
    c.req.header("authorization") === undefined &&
    !(c.req.header("cookie") ?? "").includes("galley_session=")
  );
}
