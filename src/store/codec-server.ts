import { GalleyError } from "../core/errors.ts";
import { number, oneOf, optText, type Row, text } from "./codec.ts";
import {
  type AgentRecord,
  type AgentRunRecord,
  type AuditRecord,
  type Grant,
  roles,
  type TokenRecord,
} from "./store.ts";

// How the server's records (tokens, agents, agent runs, audit entries) become columns and back.

/** `value` as the store keeps times: ISO 8601 in UTC; a clear error when it is no time. */
export function isoTime(value: string, what: string): string {
  const ms = typeof value === "string" ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new GalleyError("STATE_INVALID", `${what} ${JSON.stringify(value)} is not a time`, {
      hint: "give times in ISO 8601 (new Date().toISOString())",
    });
  }
  return new Date(ms).toISOString();
}

/** `grants` checked (known roles, a stack name or "*"), as stored. */
export function checkedGrants(grants: Grant[]): Grant[] {
  if (!Array.isArray(grants))
    throw new GalleyError("STATE_INVALID", "a token's grants must be a list", {
      hint: 'give grants as [{ stack: "web", role: "deployer" }] ("*" for every stack)',
    });
  return grants.map((grant) => {
    oneOf(roles, grant.role, "role");
    if (typeof grant.stack !== "string" || grant.stack === "") {
      throw new GalleyError(
        "STATE_INVALID",
        `a grant's stack ${JSON.stringify(grant.stack)} is not a stack name`,
        {
          hint: 'name a stack, or "*" for every stack',
        },
      );
    }
    return { stack: grant.stack, role: grant.role };
  });
}

/** The refusal of a hash that is not sha256 hex (a secret passed by mistake). */
export function badHash(what: string): GalleyError {
  return new GalleyError("STATE_INVALID", `a ${what}'s hash must be 64 lower-case hex digits (sha256)`, {
    hint: "store sha256hex(secret), never the secret itself",
  });
}

/** A `tokens` row as a record; optional fields left out when not recorded. */
export function toToken(row: Row): TokenRecord {
  const expiresAt = optText(row.expires_at);
  const lastUsedAt = optText(row.last_used_at);
  const revokedAt = optText(row.revoked_at);
  return {
    id: text(row.id),
    name: text(row.name),
    grants: JSON.parse(text(row.grants)) as Grant[],
    ...(expiresAt === undefined ? {} : { expiresAt }),
    createdAt: text(row.created_at),
    ...(lastUsedAt === undefined ? {} : { lastUsedAt }),
    ...(revokedAt === undefined ? {} : { revokedAt }),
  };
}

/** An `agents` row as a record. */
export function toAgent(row: Row): AgentRecord {
  const lastSeenAt = optText(row.last_seen_at);
  return {
    stack: text(row.stack),
    instance: text(row.instance),
    publicKey: text(row.public_key),
    generation: number(row.generation),
    enrolledAt: text(row.enrolled_at),
    ...(lastSeenAt === undefined ? {} : { lastSeenAt }),
  };
}

/** An `agent_runs` row as a record. */
export function toAgentRun(row: Row): AgentRunRecord {
  const bundle = optText(row.bundle);
  const report = optText(row.report);
  return {
    stack: text(row.stack),
    instance: text(row.instance),
    generation: number(row.generation),
    seq: number(row.seq),
    kind: text(row.kind) as AgentRunRecord["kind"],
    mode: text(row.mode) as AgentRunRecord["mode"],
    ...(bundle === undefined ? {} : { bundle }),
    status: text(row.status) as AgentRunRecord["status"],
    changed: number(row.changed),
    failed: number(row.failed),
    ...(report === undefined ? {} : { report: JSON.parse(report) as unknown }),
    startedAt: text(row.started_at),
    finishedAt: text(row.finished_at),
    receivedAt: text(row.received_at),
  };
}

/** An `audit` row as a record. */
export function toAudit(row: Row): AuditRecord {
  const stack = optText(row.stack);
  const target = optText(row.target);
  const reason = optText(row.reason);
  const detail = optText(row.detail);
  return {
    id: number(row.id),
    at: text(row.at),
    actor: text(row.actor),
    action: text(row.action),
    ...(stack === undefined ? {} : { stack }),
    ...(target === undefined ? {} : { target }),
    outcome: text(row.outcome) as AuditRecord["outcome"],
    ...(reason === undefined ? {} : { reason }),
    ...(detail === undefined ? {} : { detail: JSON.parse(detail) as unknown }),
  };
}
