// Who may do what, as the server decides it (src/server/auth.ts grantsAllow): the panel shows an
// action only when the session's grants allow it. The server still checks every request.

/** A role on a stack; each includes the ones before it. */
export const roles = ["viewer", "deployer", "admin"] as const;

/** One role. */
export type Role = (typeof roles)[number];

/** A role on one stack, or on every stack ("*"). */
export interface Grant {
  stack: string;
  role: Role;
}

/** Whether grants allow `role` on `stack` (undefined: on every stack, which needs a "*" grant). */
export function grantsAllow(grants: readonly Grant[], stack: string | undefined, role: Role): boolean {
  return grants.some(
    (g) => (g.stack === "*" || g.stack === stack) && roles.indexOf(g.role) >= roles.indexOf(role),
  );
}
