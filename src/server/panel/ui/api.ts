import { useEffect, useState } from "preact/hooks";
import { type Grant, grantsAllow, type Role } from "./grants.ts";
import { navigate } from "./router.ts";

export type { FeedEntry } from "./feed-cursor.ts";
export type { Grant, Role } from "./grants.ts";

// The panel's one way to the server: JSON requests under /v1 with the session cookie, the session's
// CSRF token on every change, errors as ApiError. A 401 anywhere means the session is gone: the
// panel goes to /login and comes back after.

/** An API error: the HTTP status and the server's code, message and hint (status 0: no answer). */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;

  constructor(status: number, code: string, message: string, hint?: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

/** The logged-in session (POST/GET /v1/session). */
export interface SessionInfo {
  actor: { kind: "token" | "user"; name: string };
  grants: Grant[];
  csrf: string;
  expiresAt: string;
}

let current: SessionInfo | undefined;
const listeners = new Set<() => void>();

/** The session, once known; undefined when logged out. */
export function session(): SessionInfo | undefined {
  return current;
}

/** Sets (or clears) the session and re-renders whoever shows it. */
export function setSession(next: SessionInfo | undefined): void {
  current = next;
  for (const listener of listeners) listener();
}

/** The session; re-renders the component when it changes. */
export function useSession(): SessionInfo | undefined {
  const [, setVersion] = useState(0);
  useEffect(() => {
    const update = () => setVersion((n) => n + 1);
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return current;
}

/** Whether the session may act with `role` on `stack` (as the server's grantsAllow decides). */
export function can(stack: string | undefined, role: Role): boolean {
  return current !== undefined && grantsAllow(current.grants, stack, role);
}

/** Sends the browser to the login page, to come back to where it was. */
export function toLogin(): void {
  if (location.pathname === "/login") return;
  const next = location.pathname + location.search;
  navigate(`/login?next=${encodeURIComponent(next)}`, { replace: true });
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && current !== undefined) headers["x-galley-csrf"] = current.csrf;
  const send = () =>
    fetch(path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      credentials: "same-origin",
    });
  let response: Response;
  try {
    // a read is asked again once when the network blinked; a change never (it may have been made)
    response = await send().catch(async (error: unknown) => {
      if (method !== "GET") throw error;
      await new Promise((resolve) => setTimeout(resolve, 300));
      return send();
    });
  } catch {
    throw new ApiError(0, "NETWORK", "the server did not answer", "check the connection and try again");
  }
  const text = await response.text();
  let json: unknown;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (response.ok) return json as T;
  const error = (json as { error?: { code?: string; message?: string; hint?: string } } | undefined)?.error;
  const failure = new ApiError(
    response.status,
    error?.code ?? `HTTP_${response.status}`,
    error?.message ?? `the server answered ${response.status} ${response.statusText}`,
    error?.hint,
  );
  // a refused login is the login form's business; any other 401: the session expired or was ended
  if (response.status === 401 && !(method === "POST" && path === "/v1/session")) {
    setSession(undefined);
    toLogin();
  }
  throw failure;
}

/** JSON requests to the API. */
export const api = {
  get: <T>(path: string): Promise<T> => request<T>("GET", path),
  post: <T>(path: string, body?: unknown): Promise<T> => request<T>("POST", path, body ?? {}),
  put: <T>(path: string, body: unknown): Promise<T> => request<T>("PUT", path, body),
  patch: <T>(path: string, body: unknown): Promise<T> => request<T>("PATCH", path, body),
  del: <T>(path: string): Promise<T> => request<T>("DELETE", path),
};

/** A path segment, escaped: `/v1/stacks/${seg(name)}`. */
export function seg(value: string | number): string {
  return encodeURIComponent(String(value));
}
