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

/** Grants as people write them: "web:deployer, *:viewer" (stack:role, separated by commas or spaces). */
export function parseGrants(text: string): { grants: Grant[] } | { error: string } {
  const grants: Grant[] = [];
  for (const part of text.split(/[\s,]+/).filter((p) => p !== "")) {
    const match = /^([^:]+):([a-z]+)$/.exec(part);
    const role = match?.[2] as Role | undefined;
    if (match === null || role === undefined || !roles.includes(role))
      return { error: `"${part}" is not STACK:ROLE (a role is ${roles.join(", ")})` };
    grants.push({ stack: match[1] ?? "", role });
  }
  if (grants.length === 0) return { error: "at least one grant, e.g. web:viewer or *:admin" };
  return { grants };
}

/** Grants as people read them: "web:deployer, *:viewer". */
export function grantsText(grants: readonly Grant[]): string {
  return grants.map((g) => `${g.stack}:${g.role}`).join(", ");
}
