import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { Context } from "hono";
import { GalleyError } from "../core/errors.ts";
import type { Grant, SessionActor, SessionRecord, Store } from "../store/store.ts";
import type { ServerEnv } from "./auth.ts";
import type { Actor, ServerContext, WebSession } from "./context.ts";

// Web sessions: what a browser holds after logging in to the panel. The cookie carries a random
// secret; the store keeps its sha256, the session's actor (a user, or the token pasted at login)
// and a CSRF token the pages send back on every change. A session slides: 12 hours idle ends it,
// and it never outlives 7 days from its creation.

/** The session cookie's name: `__Host-` makes browsers refuse it unless Secure, Path=/ and host-only. */
export const sessionCookie = "__Host-galley_session";
/** Idle time that ends a session. */
export const sessionIdleMs = 12 * 60 * 60_000;
/** The longest a session lives, however busy. */
export const sessionMaxMs = 7 * 24 * 60 * 60_000;
/** A session's use is written at most this often (its expiry slides by as much at worst). */
export const sessionTouchMs = 60_000;

const mutatingMethods = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** The `Set-Cookie` value that hands a browser its session secret. */
export function sessionCookieHeader(secret: string): string {
  return `${sessionCookie}=${secret}; Secure; HttpOnly; SameSite=Strict; Path=/`;
}

/** The `Set-Cookie` value that makes a browser forget its session. */
export function clearedSessionCookieHeader(): string {
  return `${sessionCookie}=; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

/** The session secret of a `Cookie` header (undefined: none, or not one this server could have made). */
export function sessionSecretOf(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const part of cookieHeader.split(";")) {
    const at = part.indexOf("=");
    if (at < 0 || part.slice(0, at).trim() !== sessionCookie) continue;
    const value = part.slice(at + 1).trim();
    return /^[A-Za-z0-9_-]{43}$/.test(value) ? value : "";
  }
  return undefined;
}

/** sha256 hex of a session secret: the store's key for it. */
export function sessionHash(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** When a session used at `now` expires: 12 h idle, never past 7 days from its creation. */
export function slidExpiry(createdAt: string, now: Date): string {
  return new Date(
    Math.min(now.getTime() + sessionIdleMs, Date.parse(createdAt) + sessionMaxMs),
  ).toISOString();
}

/**
 * Opens a web session for an actor: returns its cookie secret (32 random bytes, base64url; only
 * its sha256 is stored) and its record.
 *
 * @example const { secret, record } = await openSession(store, { kind: "user", name: "alice" })
 */
export async function openSession(
  store: Store,
  actor: SessionActor,
  now = new Date(),
): Promise<{ secret: string; record: SessionRecord }> {
  const secret = randomBytes(32).toString("base64url");
  const record = await store.createSession({
    hash: sessionHash(secret),
    actor,
    csrf: randomBytes(32).toString("base64url"),
    expiresAt: slidExpiry(now.toISOString(), now),
  });
  return { secret, record };
}

function ended(): GalleyError {
  return new GalleyError(
    "UNAUTHORIZED",
    "the web session ended: logged out, expired, a new password, or its user or token gone",
    {
      hint: "log in again",
    },
  );
}

/**
 * Sets the request's actor from its session cookie's secret; refuses (UNAUTHORIZED) a session that
 * ended, and (CSRF_REFUSED) a change without the session's CSRF token or from another origin.
 */
export async function authenticateSession(
  c: Context<ServerEnv>,
  ctx: ServerContext,
  secret: string,
  now: Date,
): Promise<void> {
  const hash = sessionHash(secret);
  const record = secret === "" ? undefined : await ctx.store.sessionByHash(hash, now.toISOString());
  if (record === undefined) throw ended();
  const actor = await sessionActor(ctx.store, record, now);
  if (actor === undefined) {
    await ctx.store.deleteSession(hash);
    throw ended();
  }
  c.set("actor", actor);
  if (mutatingMethods.has(c.req.method.toUpperCase())) checkCsrf(c, record.csrf);
  if (now.getTime() - Date.parse(record.lastSeenAt) >= sessionTouchMs) {
    const expiresAt = slidExpiry(record.createdAt, now);
    await ctx.store.touchSession(hash, now.toISOString(), expiresAt);
    if (actor.kind === "token") await ctx.store.touchToken(actor.id, now.toISOString());
    actor.session = { ...actor.session, expiresAt } as WebSession;
  }
}

/** The actor of a live session: its token (still valid) or its user (still there) with their grants. */
async function sessionActor(
  store: Store,
  record: SessionRecord,
  now: Date,
): Promise<Extract<Actor, { kind: "token" | "user" }> | undefined> {
  const session: WebSession = { hash: record.hash, csrf: record.csrf, expiresAt: record.expiresAt };
  if (record.actor.kind === "user") {
    const user = await store.getUser(record.actor.name);
    return user === undefined ? undefined : { kind: "user", name: user.name, grants: user.grants, session };
  }
  const { tokenId } = record.actor;
  const token = (await store.listTokens()).find((t) => t.id === tokenId);
  if (token === undefined || token.revokedAt !== undefined) return undefined;
  if (token.expiresAt !== undefined && Date.parse(token.expiresAt) <= now.getTime()) return undefined;
  return { kind: "token", id: token.id, name: token.name, grants: token.grants, session };
}

/** Refuses a cookie-authenticated change without the session's CSRF token, or from another origin. */
export function checkCsrf(c: Context, csrf: string): void {
  const sent = Buffer.from(c.req.header("x-galley-csrf") ?? "", "utf8");
  const expected = Buffer.from(csrf, "utf8");
  if (sent.length !== expected.length || !timingSafeEqual(sent, expected))
    throw new GalleyError(
      "CSRF_REFUSED",
      "a change made with a session cookie needs its X-Galley-CSRF header",
      {
        hint: "send the csrf value of POST or GET /v1/session in X-Galley-CSRF (or use a bearer token)",
      },
    );
  checkOrigin(c);
}

/** Refuses a request whose Origin header (when there is one) is not the host it was sent to. */
export function checkOrigin(c: Context): void {
  const origin = c.req.header("origin");
  if (origin === undefined) return;
  if (hostOf(origin) === undefined || hostOf(origin) !== hostOf(`https://${c.req.header("host") ?? ""}`))
    throw new GalleyError("CSRF_REFUSED", "the request's Origin is not this server", {
      hint: "the panel's pages make changes only from the server's own address",
    });
}

function hostOf(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return parsed.host === "" ? undefined : parsed.host.toLowerCase();
  } catch {
    return undefined;
  }
}

/** What the session API answers: who, with what grants, the CSRF token and the expiry. */
export interface SessionBody {
  actor: { kind: "token" | "user"; name: string };
  grants: Grant[];
  csrf: string;
  expiresAt: string;
}

/** The session API's answer for an actor with a session. */
export function sessionBody(
  actor: Extract<Actor, { kind: "token" | "user" }>,
  session: WebSession,
): SessionBody {
  return {
    actor: { kind: actor.kind, name: actor.name },
    grants: actor.grants,
    csrf: session.csrf,
    expiresAt: session.expiresAt,
  };
}
