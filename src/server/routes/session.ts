import type { IncomingMessage } from "node:http";
import type { Context } from "hono";
import * as v from "valibot";
import { GalleyError } from "../../core/errors.ts";
import { type Grant, roles, type SessionActor } from "../../store/store.ts";
import type { Registrar } from "../app.ts";
import { hashSecret, type PersonActor, requirePerson, type ServerEnv } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute } from "../openapi.ts";
import {
  checkOrigin,
  clearedSessionCookieHeader,
  openSession,
  sessionBody,
  sessionCookieHeader,
  sessionHash,
  sessionSecretOf,
} from "../sessions.ts";
import { LoginThrottle } from "../throttle.ts";
import { checkLogin, checkNewUser, hashPassword, prepareDummyHash, verifyPassword } from "../users.ts";
import { registerUsers } from "./users.ts";

// The web panel's login: POST /v1/session trades a token or a user's name and password for a
// session cookie and its CSRF token; GET tells a page who it is; DELETE logs out. Users change
// their own password here; admins manage users in ./users.ts.

const grant = v.object({ stack: v.string(), role: v.picklist(roles) });
const session = v.object({
  actor: v.object({ kind: v.picklist(["token", "user"]), name: v.string() }),
  grants: v.array(grant),
  csrf: v.string(),
  expiresAt: v.string(),
});
// the schemas' messages never quote what was sent: it may be a secret (and refusals are audited)
const secretText = (max: number) =>
  v.pipe(v.string("a string"), v.maxLength(max, `at most ${max} characters`));
const login = v.union(
  [
    v.strictObject({ token: secretText(512) }),
    v.strictObject({ user: secretText(200), password: secretText(4096) }),
  ],
  "{ token } or { user, password }",
);

function loginFailed(): GalleyError {
  return new GalleyError(
    "LOGIN_FAILED",
    "the login was refused: a wrong user name or password, or a token that is unknown, expired or revoked",
    { hint: "check what you typed, or ask an admin" },
  );
}

/** The address a request came from (the throttle's key; the audit's detail). */
function remoteOf(c: Context<ServerEnv>): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket.remoteAddress ?? "unknown";
}

/**
 * Opens a session for an actor, sets its cookie, and answers the session's body; a session the
 * request's cookie still names (a login over an old one) ends.
 */
/** Who logs in, before the session the login opens for them. */
type LoggingIn =
  | { kind: "token"; id: string; name: string; grants: Grant[] }
  | { kind: "user"; name: string; grants: Grant[] };

async function startSession(c: Context<ServerEnv>, ctx: ServerContext, who: LoggingIn, of: SessionActor) {
  const previous = sessionSecretOf(c.req.header("cookie"));
  if (previous) await ctx.store.deleteSession(sessionHash(previous));
  const { secret, record } = await openSession(ctx.store, of);
  const web = { hash: record.hash, csrf: record.csrf, expiresAt: record.expiresAt };
  const actor: PersonActor = { ...who, session: web };
  c.set("actor", actor); // the audit entry of the login names who logged in
  c.header("set-cookie", sessionCookieHeader(secret));
  return sessionBody(actor, web);
}

/** The session routes (and the users' under /v1/users): part of every server's core, beside tokens. */
export const register: Registrar = (app, ctx) => {
  const throttle = new LoginThrottle();
  let sweptAt = 0;
  prepareDummyHash().catch((error: unknown) => ctx.log(`error: the dummy password hash: ${String(error)}`));
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/session",
      summary: "Logs in with a token or a user's name and password: a session cookie and its CSRF token",
      auth: "none",
      action: "session.login",
      body: login,
      response: session,
    },
    async ({ c, body, audit }) => {
      const now = new Date();
      const remote = remoteOf(c);
      const user = "user" in body ? body.user : undefined;
      audit({ target: user === undefined ? "token" : `user:${user}`, detail: { remote } });
      checkOrigin(c);
      const keys = [`address:${remote}`, ...(user === undefined ? [] : [`user:${user.toLowerCase()}`])];
      const wait = throttle.waitMs(keys, now.getTime());
      if (wait > 0) c.header("retry-after", String(Math.ceil(wait / 1000)));
      throttle.check(keys, now.getTime());
      // counted as failed until it succeeds: parallel guesses cannot all pass the check above
      throttle.fail(keys, now.getTime());
      if (now.getTime() - sweptAt > 60_000) {
        sweptAt = now.getTime();
        await ctx.store.deleteExpiredSessions(now.toISOString());
      }
      if ("token" in body) {
        const token = await ctx.store.tokenByHash(hashSecret(body.token));
        const valid =
          token !== undefined &&
          token.revokedAt === undefined &&
          (token.expiresAt === undefined || Date.parse(token.expiresAt) > now.getTime());
        if (!valid) throw loginFailed();
        throttle.forgive(keys, now.getTime());
        audit({ target: `token:${token.name}` });
        const who: LoggingIn = { kind: "token", id: token.id, name: token.name, grants: token.grants };
        return startSession(c, ctx, who, { kind: "token", tokenId: token.id });
      }
      const record = await checkLogin(ctx.store, body.user, body.password);
      if (record === undefined) throw loginFailed();
      throttle.forgive(keys, now.getTime());
      throttle.clear(`user:${body.user.toLowerCase()}`);
      await ctx.store.updateUser(record.name, { lastLoginAt: now.toISOString() });
      const who: LoggingIn = { kind: "user", name: record.name, grants: record.grants };
      return startSession(c, ctx, who, { kind: "user", name: record.name });
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/session",
      summary: "The session of this cookie (or the bearer token): who, with what grants, its CSRF token",
      auth: "token",
      authorizeInHandler: true,
      response: session,
    },
    ({ c }) => {
      const actor = requirePerson(c);
      if (actor.session === undefined)
        // a bearer token has no CSRF token and no expiry of a session: it needs neither
        return sessionBody(actor, { hash: "", csrf: "", expiresAt: "" });
      return sessionBody(actor, actor.session);
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "delete",
      path: "/v1/session",
      summary: "Logs out: ends this session and clears its cookie",
      auth: "token",
      authorizeInHandler: true,
      action: "session.logout",
      response: v.object({}),
    },
    async ({ c }) => {
      const actor = requirePerson(c);
      if (actor.session !== undefined) await ctx.store.deleteSession(actor.session.hash);
      // a bearer header won over the cookie: the cookie's session ends too
      const secret = sessionSecretOf(c.req.header("cookie"));
      if (secret) await ctx.store.deleteSession(sessionHash(secret));
      c.header("set-cookie", clearedSessionCookieHeader());
      return {};
    },
  );
  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/session/password",
      summary: "Changes the logged-in user's password; their other sessions end",
      auth: "token",
      authorizeInHandler: true,
      action: "user.password",
      body: v.strictObject(
        { current: secretText(4096), password: secretText(4096) },
        "{ current, password }",
      ),
      response: session,
      status: 200,
    },
    async ({ c, body, audit }) => {
      const actor = requirePerson(c);
      if (actor.kind !== "user")
        throw new GalleyError("FORBIDDEN", `token ${actor.name} has no password`, {
          hint: "log in as a user to change your password",
        });
      audit({ target: `user:${actor.name}` });
      const key = `user:${actor.name.toLowerCase()}`;
      const at = Date.now();
      const wait = throttle.waitMs([key], at);
      if (wait > 0) c.header("retry-after", String(Math.ceil(wait / 1000)));
      throttle.check([key], at);
      throttle.fail([key], at); // forgiven once the password is known right
      const user = await ctx.store.getUser(actor.name);
      if (user === undefined || !(await verifyPassword(body.current, user.passwordHash)))
        throw new GalleyError("FORBIDDEN", "the current password is wrong", {
          hint: "type the password you logged in with",
        });
      throttle.forgive([key], at);
      checkNewUser({ password: body.password }, "REQUEST_INVALID");
      await ctx.store.updateUser(user.name, { passwordHash: await hashPassword(body.password) });
      // every session of the user ends, this one too: it is replaced by a new one (new cookie, new CSRF)
      await ctx.store.deleteSessionsOf({ kind: "user", name: user.name });
      return startSession(c, ctx, { ...actor, grants: user.grants }, { kind: "user", name: user.name });
    },
  );
  registerUsers(app, ctx);
};
