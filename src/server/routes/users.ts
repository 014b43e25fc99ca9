import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { type Grant, roles } from "../../store/store.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { checkNewUser, hashPassword, publicUser } from "../users.ts";

// The server's user accounts, for admins on "*": people who log in to the web panel with a
// password. A user's grants are read on every request: a change applies at once to their sessions.

const userName = v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.@-]{1,64}$/, "1 to 64 of A-Z a-z 0-9 _ . @ -"));
const stackName = v.pipe(v.string(), v.regex(/^(\*|[a-z0-9][a-z0-9-]{0,62})$/, "a stack name or *"));
const grants = v.pipe(
  v.array(v.strictObject({ stack: stackName, role: v.picklist(roles) })),
  v.minLength(1, "at least one grant"),
  v.maxLength(100),
);
// never quoted in a message: a refusal's reason is audited
const password = v.pipe(v.string("a string"), v.maxLength(4096, "at most 4096 characters"));
const user = v.object({
  name: v.string(),
  grants: v.array(v.object({ stack: v.string(), role: v.picklist(roles) })),
  createdAt: v.string(),
  updatedAt: v.string(),
  lastLoginAt: v.optional(v.string()),
});

function noUser(name: string): GalleyError {
  return new GalleyError("NOT_FOUND", `no user ${name}`, { hint: "GET /v1/users lists them" });
}

/** GET/POST /v1/users, PATCH/DELETE /v1/users/:name (admin on "*"). */
export function registerUsers(app: ServerApp, ctx: ServerContext): void {
  const params = v.object({ name: userName });
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/users",
      summary: "The server's users (never their passwords)",
      auth: "token",
      role: "admin",
      response: v.object({ users: v.array(user) }),
    },
    async () => ({ users: (await ctx.store.listUsers()).map(publicUser) }),
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/users",
      summary: "Creates a user with a password (12 characters or more) and grants",
      auth: "token",
      role: "admin",
      action: "user.create",
      body: v.strictObject({ name: userName, password, grants }, "{ name, password, grants }"),
      response: v.object({ user }),
    },
    async ({ body, audit }) => {
      audit({ target: `user:${body.name}`, detail: { grants: body.grants } });
      checkNewUser({ name: body.name, password: body.password }, "REQUEST_INVALID");
      if ((await ctx.store.getUser(body.name)) !== undefined)
        throw new GalleyError("STATE_INVALID", `user ${body.name} exists`, {
          hint: "PATCH /v1/users/NAME changes a user's password or grants",
        });
      const passwordHash = await hashPassword(body.password);
      const record = await ctx.store.createUser({ name: body.name, passwordHash, grants: body.grants });
      return { user: publicUser(record) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "patch",
      path: "/v1/users/:name",
      summary: "Changes a user's password (their sessions end) or grants (at once)",
      auth: "token",
      role: "admin",
      action: "user.update",
      params,
      target: (p) => `user:${p.name}`,
      body: v.strictObject(
        { password: v.optional(password), grants: v.optional(grants) },
        "{ password?, grants? }",
      ),
      response: v.object({ user }),
    },
    async ({ params, body, audit }) => {
      audit({ detail: { password: body.password !== undefined, grants: body.grants } });
      checkNewUser({ password: body.password }, "REQUEST_INVALID");
      if ((await ctx.store.getUser(params.name)) === undefined) throw noUser(params.name);
      const change: { passwordHash?: string; grants?: Grant[] } = {};
      if (body.password !== undefined) change.passwordHash = await hashPassword(body.password);
      if (body.grants !== undefined) change.grants = body.grants;
      const record = await ctx.store.updateUser(params.name, change);
      if (body.password !== undefined) await ctx.store.deleteSessionsOf({ kind: "user", name: params.name });
      return { user: publicUser(record) };
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "delete",
      path: "/v1/users/:name",
      summary: "Deletes a user; their sessions end",
      auth: "token",
      role: "admin",
      action: "user.delete",
      params,
      target: (p) => `user:${p.name}`,
      response: v.object({}),
    },
    async ({ params }) => {
      await ctx.store.deleteSessionsOf({ kind: "user", name: params.name });
      if (!(await ctx.store.deleteUser(params.name))) throw noUser(params.name);
      return {};
    },
  );
}
