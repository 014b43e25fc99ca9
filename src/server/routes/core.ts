import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import type { Registrar } from "../app.ts";
import { authorize, mintToken } from "../auth.ts";
import { defineRoute } from "../openapi.ts";
import { roles } from "../../store/store.ts";

// The server core's own routes: its CA (what clients pin), admin tokens, and the audit log.

const name = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, "a name of letters, digits, . _ @ -"),
);
const stackName = v.pipe(v.string(), v.regex(/^(\*|[a-z0-9][a-z0-9-]{0,62})$/, "a stack name or *"));
const grant = v.strictObject({ stack: stackName, role: v.picklist(roles) });
const isoTime = v.pipe(v.string(), v.isoTimestamp());
const token = v.object({
  id: v.string(),
  name: v.string(),
  grants: v.array(v.object({ stack: v.string(), role: v.picklist(roles) })),
  expiresAt: v.optional(v.string()),
  createdAt: v.string(),
  lastUsedAt: v.optional(v.string()),
  revokedAt: v.optional(v.string()),
});
const auditEntry = v.object({
  id: v.number(),
  at: v.string(),
  actor: v.string(),
  action: v.string(),
  stack: v.optional(v.string()),
  target: v.optional(v.string()),
  outcome: v.picklist(["ok", "refused", "auto"]),
  reason: v.optional(v.string()),
  detail: v.optional(v.unknown()),
});

/** The core routes: GET /v1/ca.pem, GET/POST/DELETE /v1/tokens, GET /v1/audit. */
export function coreRoutes(caPem: string): Registrar {
  return (app, ctx) => {
    defineRoute(
      app,
      ctx,
      {
        method: "get",
        path: "/v1/ca.pem",
        summary: "The server's CA certificate (PEM): check its sha256 fingerprint, then pin it",
        auth: "none",
        response: v.string(),
        contentType: "application/x-pem-file",
      },
      ({ c }) => c.body(caPem, 200, { "content-type": "application/x-pem-file" }),
    );
    defineRoute(
      app,
      ctx,
      {
        method: "get",
        path: "/v1/tokens",
        summary: "The server's tokens (never their secrets)",
        auth: "token",
        role: "admin",
        response: v.array(token),
      },
      () => ctx.store.listTokens(),
    );
    defineRoute(
      app,
      ctx,
      {
        method: "post",
        path: "/v1/tokens",
        summary: "Creates a token; its secret is in this response only",
        auth: "token",
        role: "admin",
        action: "token.create",
        body: v.strictObject({
          name,
          grants: v.pipe(v.array(grant), v.minLength(1, "at least one grant"), v.maxLength(100)),
          expiresAt: v.optional(isoTime),
        }),
        response: v.object({ token, secret: v.string() }),
      },
      async ({ body, audit }) => {
        const { record, secret } = await mintToken(ctx.store, body);
        audit({ target: record.id, detail: { name: record.name, grants: record.grants } });
        return { token: record, secret };
      },
    );
    defineRoute(
      app,
      ctx,
      {
        method: "delete",
        path: "/v1/tokens/:id",
        summary: "Revokes a token; the web sessions opened with it end",
        auth: "token",
        role: "admin",
        action: "token.revoke",
        params: v.object({ id: v.pipe(v.string(), v.maxLength(100)) }),
        target: (p) => p.id,
        response: token,
      },
      async ({ params }) => {
        const known = (await ctx.store.listTokens()).some((t) => t.id === params.id);
        if (!known)
          throw new GalleyError("NOT_FOUND", `no token ${params.id}`, { hint: "GET /v1/tokens lists them" });
        const record = await ctx.store.revokeToken(params.id);
        await ctx.store.deleteSessionsOf({ kind: "token", tokenId: params.id });
        return record;
      },
    );
    defineRoute(
      app,
      ctx,
      {
        method: "get",
        path: "/v1/audit",
        summary: "The audit log, newest first (viewer of the stack filtered on; admin for all)",
        auth: "token",
        authorizeInHandler: true,
        query: v.object({
          stack: v.optional(stackName),
          outcome: v.optional(v.picklist(["ok", "refused", "auto"])),
          limit: v.optional(
            v.pipe(v.string(), v.regex(/^\d{1,4}$/, "a number up to 9999"), v.transform(Number)),
          ),
        }),
        response: v.array(auditEntry),
      },
      async ({ c, query }) => {
        if (query.stack === undefined || query.stack === "*") authorize(c, undefined, "admin");
        else authorize(c, query.stack, "viewer");
        const options: { stack?: string; outcome?: "ok" | "refused" | "auto"; limit?: number } = {
          limit: query.limit ?? 100,
        };
        if (query.stack !== undefined && query.stack !== "*") options.stack = query.stack;
        if (query.outcome !== undefined) options.outcome = query.outcome;
        return ctx.store.listAudit(options);
      },
    );
  };
}
