import { createHash, randomBytes } from "node:crypto";
import type { Context } from "hono";
import { GalleyError } from "../core/errors.ts";
import type { Actor, ServerContext } from "./context.ts";
import { authenticateSession, sessionSecretOf } from "./sessions.ts";
import {
  type AuditInput,
  type Grant,
  type Role,
  roles,
  type Store,
  type TokenRecord,
} from "../store/store.ts";

// Who may do what: a bearer token's secret is hashed and looked up in the store, or a web session's
// cookie (src/server/sessions.ts) names a user or a token; their grants give a role per stack (or
// "*"). Refusals are GalleyErrors the app's error handler turns into 401/403 and
// records in the audit log. Secrets never leave this file except once, to whoever minted them.

/** The environment of the server's Hono app. */
export interface ServerEnv {
  Variables: { actor: Actor };
}

/** The prefix of every token secret (recognisable in a leaked file or a log). */
export const tokenPrefix = "galley_";

/** sha256 hex of a secret: what the store keeps. */
export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/**
 * Creates a token with its grants and returns its record and its secret (shown once, never stored).
 *
 * @example const { secret } = await mintToken(store, { name: "ci", grants: [{ stack: "web", role: "deployer" }] })
 */
export async function mintToken(
  store: Store,
  input: { name: string; grants: Grant[]; expiresAt?: string | undefined },
): Promise<{ record: TokenRecord; secret: string }> {
  const secret = tokenPrefix + randomBytes(32).toString("base64url");
  const record = await store.createToken({ ...input, hash: hashSecret(secret) });
  return { record, secret };
}

/** Whether `role` includes `wanted` (admin ⊇ deployer ⊇ viewer). */
export function roleIncludes(role: Role, wanted: Role): boolean {
  return roles.indexOf(role) >= roles.indexOf(wanted);
}

/** Whether grants allow `role` on `stack` (undefined: on every stack, which needs a "*" grant). */
export function grantsAllow(grants: readonly Grant[], stack: string | undefined, role: Role): boolean {
  return grants.some((g) => (g.stack === "*" || g.stack === stack) && roleIncludes(g.role, role));
}

/** Whether an actor (a token or a user) may act with `role` on `stack` (agents never hold roles). */
export function can(actor: Actor | undefined, stack: string | undefined, role: Role): boolean {
  return actor !== undefined && actor.kind !== "agent" && grantsAllow(actor.grants, stack, role);
}

/**
 * Refuses the request unless its actor holds `role` on `stack` (undefined: on every stack):
 * UNAUTHORIZED without an actor, FORBIDDEN otherwise.
 *
 * @example authorize(c, params.stack, "deployer")
 */
export function authorize(c: Context<ServerEnv>, stack: string | undefined, role: Role): void {
  const actor = c.get("actor") as Actor | undefined;
  if (actor === undefined)
    throw new GalleyError("UNAUTHORIZED", "this request needs a token or a web session", {
      hint: "send `Authorization: Bearer <token>` (galley token create, or the server's admin.token), or log in (POST /v1/session)",
    });
  if (can(actor, stack, role)) return;
  const where = stack === undefined ? "every stack" : `stack ${stack}`;
  const who =
    actor.kind === "agent" ? `agent ${actor.stack}/${actor.instance}` : `${actor.kind} ${actor.name}`;
  throw new GalleyError("FORBIDDEN", `${who} is not ${role} on ${where}`, {
    hint: `ask an admin for ${actor.kind === "user" ? "the" : "a token with the"} grant ${stack ?? "*"}:${role}`,
  });
}

/** A person's actor: a token (bearer or web session) or a user (web session), not an agent. */
export type PersonActor = Extract<Actor, { kind: "token" | "user" }>;

/**
 * Refuses a request that carries no token or session (UNAUTHORIZED) or an agent's (FORBIDDEN);
 * returns its token or user actor.
 */
export function requirePerson(c: Context<ServerEnv>): PersonActor {
  const actor = c.get("actor") as Actor | undefined;
  if (actor?.kind === "token" || actor?.kind === "user") return actor;
  if (actor === undefined) authorize(c, undefined, "viewer"); // throws UNAUTHORIZED
  throw new GalleyError("FORBIDDEN", "this route is for tokens and users, not agents");
}

/** requirePerson under its first name (routes written before user accounts call it). */
export const requireToken = requirePerson;

/** The audit log's name for an actor: "token:<name>", "user:<name>", "agent:<stack>/<instance>", or "anonymous". */
export function actorName(actor: Actor | undefined): string {
  if (actor === undefined) return "anonymous";
  return actor.kind === "agent" ? `agent:${actor.stack}/${actor.instance}` : `${actor.kind}:${actor.name}`;
}

/**
 * Sets the request's actor from its Authorization header (`Bearer <secret>` or `Agent <session>`)
 * or, without one, its session cookie (a change then needs the session's CSRF token); a header or
 * cookie that names no valid token or session is refused (UNAUTHORIZED). Neither: no actor.
 */
export async function authenticate(
  c: Context<ServerEnv>,
  ctx: ServerContext,
  now = new Date(),
): Promise<void> {
  const header = c.req.header("authorization");
  if (header === undefined) {
    const secret = sessionSecretOf(c.req.header("cookie"));
    if (secret !== undefined) await authenticateSession(c, ctx, secret, now);
    return;
  }
  const match = /^(Bearer|Agent) +(\S{1,512})$/i.exec(header.trim());
  if (match === null)
    throw new GalleyError(
      "UNAUTHORIZED",
      "the Authorization header is not `Bearer <token>` or `Agent <session>`",
      {
        hint: "send `Authorization: Bearer <token>`",
      },
    );
  const [, scheme = "", credential = ""] = match;
  if (scheme.toLowerCase() === "agent") {
    const target = ctx.agents.agentForSession?.(credential);
    if (target === undefined)
      throw new GalleyError("UNAUTHORIZED", "the agent session is not open", {
        hint: "the agent reconnects its channel and uses the session its welcome gave",
      });
    c.set("actor", { kind: "agent", stack: target.stack, instance: target.instance });
    return;
  }
  const token = await ctx.store.tokenByHash(hashSecret(credential));
  if (token === undefined)
    throw new GalleyError("UNAUTHORIZED", "the token is not known to this server", {
      hint: "check the server URL and the token (galley token list shows the server's tokens)",
    });
  if (token.revokedAt !== undefined)
    throw new GalleyError("UNAUTHORIZED", `token ${token.name} was revoked at ${token.revokedAt}`, {
      hint: "ask an admin for a new token",
    });
  if (token.expiresAt !== undefined && Date.parse(token.expiresAt) <= now.getTime())
    throw new GalleyError("UNAUTHORIZED", `token ${token.name} expired at ${token.expiresAt}`, {
      hint: "ask an admin for a new token",
    });
  c.set("actor", { kind: "token", id: token.id, name: token.name, grants: token.grants });
  await ctx.store.touchToken(token.id, now.toISOString());
}

/** What the audit log needs to know about the route a request matched. */
export interface RouteNote {
  action: string;
  stack?: string | undefined;
  target?: string | undefined;
  detail?: unknown;
  mutating: boolean;
}

const notes = new WeakMap<Request, RouteNote>();

/** Remembers the matched route of a request, for the audit entry of its outcome. */
export function noteRoute(c: Context<ServerEnv>, note: RouteNote): void {
  notes.set(c.req.raw, note);
}

/** The route a request matched (undefined before defineRoute saw it). */
export function routeNote(c: Context<ServerEnv>): RouteNote | undefined {
  return notes.get(c.req.raw);
}

/**
 * Records a request's outcome in the audit log: "ok" for a change made, "refused" with the reason.
 * The reason is the error's message, which never carries a secret (tokens are named, not shown).
 */
export async function auditRequest(
  c: Context<ServerEnv>,
  ctx: ServerContext,
  outcome: "ok" | "refused",
  reason?: string,
): Promise<void> {
  const note = routeNote(c);
  const entry: AuditInput = {
    actor: actorName(c.get("actor") as Actor | undefined),
    action: note?.action ?? `${c.req.method} ${c.req.routePath || "?"}`,
    outcome,
  };
  if (note?.stack !== undefined) entry.stack = note.stack;
  if (note?.target !== undefined) entry.target = note.target;
  if (note?.detail !== undefined) entry.detail = note.detail;
  if (reason !== undefined) entry.reason = reason;
  await ctx.store.appendAudit(entry);
}
