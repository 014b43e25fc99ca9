/**
 * The one error type users see. Every failure a user can cause is a GalleyError with a stable
 * `code`, a message naming what was wrong and where, and a `hint` saying what to do.
 *
 * @example throw new GalleyError("RECIPE_NOT_FOUND", "no recipe web::db in cookbooks/web/recipes", { hint: "…" })
 */
export class GalleyError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GalleyError";
    this.code = code;
    this.hint = options.hint;
  }
}

/** Stable error codes and the exit code each maps to (documented in docs/cli.md). */
export const errorCodes = {
  USAGE: 2,
  ARGS_INVALID: 2,
  COOKBOOK_NOT_FOUND: 2,
  COOKBOOK_INVALID: 2,
  RECIPE_NOT_FOUND: 2,
  RECIPE_FAILED: 2,
  RESOURCE_UNKNOWN_TYPE: 2,
  RESOURCE_INVALID: 2,
  RESOURCE_CONFLICT: 2,
  RESOURCE_NOT_FOUND: 2,
  DEPENDENCY_CYCLE: 2,
  ATTRIBUTES_INVALID: 2,
  TEMPLATE_FAILED: 2,
  FILE_NOT_FOUND: 2,
  STATE_INVALID: 2,
  PLATFORM_UNSUPPORTED: 2,
  /** cookbooks.yaml or a cookbook source is wrong, or a source cannot be fetched */
  SOURCE_INVALID: 2,
  /** no set of versions satisfies every constraint */
  DEPENDENCY_CONFLICT: 2,
  /** cookbooks.lock is missing, stale or does not match the content it pins */
  LOCK_INVALID: 2,
  /** a bundle is unreadable or its content does not match its id or lock */
  BUNDLE_INVALID: 2,
  /** the server has no prepared bundle of that id (GET /v1/bundles/:id) */
  BUNDLE_UNKNOWN: 2,
  /** trust is configured and a bundle is unsigned, signed by a key not trusted, or its signature fails */
  BUNDLE_UNTRUSTED: 2,
  /** a bundle signing key or trusted public key file is missing, unreadable or not Ed25519 */
  SIGNING_KEY_INVALID: 2,
  /** an encrypted file cannot be read with the key given, or no key was given */
  SECRET_INVALID: 2,
  /** a stack file is unreadable, breaks its schema, or names a layer that does not exist */
  STACK_INVALID: 2,
  /** an inventory file is unreadable or wrong, or --limit selects no host */
  INVENTORY_INVALID: 2,
  /** a Galley server (--server, galley login) could not be reached */
  SERVER_UNREACHABLE: 4,
  /** a Galley server's certificate is not signed by the CA pinned at login, or its CA fingerprint differs */
  SERVER_UNTRUSTED: 4,
  /** a Galley server answered with something that is not its API (no JSON, an unknown error) */
  SERVER_FAILED: 3,
  /** a host could not be reached: connection refused or timed out, DNS, jump host */
  HOST_UNREACHABLE: 4,
  /** the SSH server refused every key offered */
  SSH_AUTH_FAILED: 4,
  /** the server refused an agent on its channel: not enrolled, a bad signature, a frame breaking the protocol */
  AGENT_AUTH_FAILED: 4,
  /** an agent enrollment token is used, expired, forged, or names a server CA this server does not have */
  ENROLL_REFUSED: 4,
  /** the host's key is not in known_hosts (strict checking) */
  HOST_KEY_UNKNOWN: 4,
  /** the host's key differs from the one recorded in known_hosts: possibly an attack */
  HOST_KEY_CHANGED: 4,
  /** sudo (become) refused or asked for a password */
  BECOME_FAILED: 4,
  /** the container provider cannot run here (not root, not Linux, a tool missing) or a host is wrong */
  PROVIDER_FAILED: 5,
  /** another run holds the host's run lock and did not end within --wait */
  RUN_LOCKED: 6,
  /** another deployment of the same app of the stack is running (one at a time per app) */
  DEPLOY_LOCKED: 6,
  /** an A/B deployment of the app is under way: promote or abort it before another deployment */
  AB_ACTIVE: 6,
  /** a deployment cannot go on: its migration is claimed by another process, or it was asked something impossible */
  DEPLOY_FAILED: 1,
  /** the run was stopped by SIGINT (Ctrl-C) or SIGTERM; the command exits 130 or 143 */
  INTERRUPTED: 130,
  /** the agent's config or key (/etc/galley/agent.json, agent.key) is missing or wrong: the host is not enrolled */
  AGENT_CONFIG_INVALID: 2,
  /** an API request carries no token, or one that is unknown, expired or revoked */
  UNAUTHORIZED: 4,
  /** the API token's grants do not allow this on this stack */
  FORBIDDEN: 4,
  /** a change made with a web session cookie lacks the session's X-Galley-CSRF token, or comes from another origin */
  CSRF_REFUSED: 4,
  /** a login (POST /v1/session) named a wrong user or password, or an unknown, expired or revoked token */
  LOGIN_FAILED: 4,
  /** too many failed logins for the user name or from the address within 15 minutes: wait */
  LOGIN_THROTTLED: 4,
  /** an API request is malformed: its path, query or body breaks the route's schema */
  REQUEST_INVALID: 2,
  /** an API request's body is over the server's limit (1 MiB) */
  REQUEST_TOO_LARGE: 2,
  /** no API route (or no such object) at this path and method */
  NOT_FOUND: 2,
  /** the server failed on a request (its log says why) */
  INTERNAL: 3,
  /** the server's TLS files (CA, certificate, keys) are unreadable or wrong */
  TLS_INVALID: 2,
  RESOURCE_TYPE_ERROR: 3,
  APPLY_FAILED: 1,
  EXEC_FAILED: 1,
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** Exit codes of every galley command. */
export const exitCodes = {
  ok: 0,
  /** the run finished but at least one resource failed */
  runFailed: 1,
  /** bad input: arguments, cookbooks, recipes, attributes */
  userError: 2,
  /** a bug in Galley or in a resource type */
  internalError: 3,
  /** a host could not be reached or refused us (network, SSH authentication, host key, sudo) */
  unreachable: 4,
  /** the container provider failed: not root, not Linux, a tool missing, a host in a bad state */
  providerFailed: 5,
  /** another run held the host's run lock for longer than --wait */
  runLocked: 6,
  /** interrupted by SIGINT (Ctrl-C): 128 + 2 */
  interruptedInt: 130,
  /** interrupted by SIGTERM: 128 + 15 */
  interruptedTerm: 143,
} as const;

/** Whether a value is a GalleyError (also across module copies). */
export function isGalleyError(value: unknown): value is GalleyError {
  return value instanceof GalleyError;
}

/** A one-line description of any thrown value, for reports. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
