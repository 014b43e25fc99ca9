import type { ContentfulStatusCode } from "hono/utils/http-status";
import { type ErrorCode, errorCodes, GalleyError, isGalleyError } from "../core/errors.ts";

// How a GalleyError reaches an API client: an HTTP status chosen by its code, and a JSON body with
// the code, the message and the hint. Anything else is a 500 INTERNAL that says nothing of itself.

/** The body of every API error response. */
export interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}

const statusByCode: Partial<Record<ErrorCode, ContentfulStatusCode>> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  CSRF_REFUSED: 403,
  LOGIN_FAILED: 401,
  LOGIN_THROTTLED: 429,
  NOT_FOUND: 404,
  REQUEST_INVALID: 400,
  REQUEST_TOO_LARGE: 413,
  STATE_INVALID: 409,
  DEPLOY_LOCKED: 409,
  RUN_LOCKED: 409,
  AB_ACTIVE: 409,
  DEPLOY_FAILED: 409,
  HOST_UNREACHABLE: 502,
  INTERNAL: 500,
  TLS_INVALID: 500,
  INTERRUPTED: 503,
  ENROLL_REFUSED: 401,
  AGENT_AUTH_FAILED: 401,
  BUNDLE_UNKNOWN: 404,
};

/** The HTTP status of an error code: explicit for API codes, else by the code's exit code. */
export function httpStatus(code: ErrorCode): ContentfulStatusCode {
  const explicit = statusByCode[code];
  if (explicit !== undefined) return explicit;
  switch (errorCodes[code]) {
    case 2:
      return 422; // the user's input (a stack, a recipe) is wrong
    case 4:
    case 5:
      return 502; // a host or provider behind the server failed
    case 6:
      return 409;
    case 1:
      return 422;
    default:
      return 500;
  }
}

/** The response body and status for any thrown value; non-Galley errors say only INTERNAL. */
export function errorResponse(error: unknown): { status: ContentfulStatusCode; body: ErrorBody } {
  if (isGalleyError(error)) {
    const body: ErrorBody = { error: { code: error.code, message: error.message } };
    if (error.hint !== undefined) body.error.hint = error.hint;
    return { status: httpStatus(error.code), body };
  }
  return {
    status: 500,
    body: {
      error: { code: "INTERNAL", message: "the server failed on this request", hint: "see the server's log" },
    },
  };
}

/** A GalleyError for a request that breaks its route's schema. */
export function requestInvalid(message: string): GalleyError {
  // a message may quote what the client sent: keep it short
  const short = message.length > 300 ? `${message.slice(0, 300)}…` : message;
  return new GalleyError("REQUEST_INVALID", short, {
    hint: "see GET /v1/openapi.json for the route's schema",
  });
}
