import { existsSync, openAsBlob, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import * as v from "valibot";
import { cacheDir } from "../../cookbooks/git.ts";
import { preparedBundleFile } from "../../cookbooks/prepared.ts";
import { GalleyError } from "../../core/errors.ts";
import type { AgentRecord } from "../../store/store.ts";
import { authorize, can } from "../auth.ts";
import type { ServerContext } from "../context.ts";
import { defineRoute, type ServerApp } from "../openapi.ts";
import { certificateFingerprint, enrollAgent, mintEnrollment } from "./enrollment.ts";
import type { ServerAgentHub } from "./hub.ts";

// The agents' HTTPS routes: enrollment (the one-time token is the credential), minting a token,
// bundle downloads for connected agents, and the list of agents.

const name = v.pipe(v.string(), v.minLength(1), v.maxLength(256));
const pem = v.pipe(v.string(), v.maxLength(4096));

const enrollBody = v.object({
  token: v.pipe(v.string(), v.maxLength(4096)),
  publicKey: pem,
  hostname: v.optional(v.pipe(v.string(), v.maxLength(256))),
});
const enrolled = v.object({ stack: v.string(), instance: v.string(), generation: v.number() });
const minted = v.object({
  stack: v.string(),
  instance: v.string(),
  token: v.string(),
  expiresAt: v.string(),
});
const agentView = v.object({
  stack: v.string(),
  instance: v.string(),
  generation: v.number(),
  enrolledAt: v.string(),
  lastSeenAt: v.optional(v.string()),
  connected: v.boolean(),
  connectedAt: v.optional(v.string()),
  remote: v.optional(v.string()),
});

/** The CA fingerprint enrollment tokens name: this server's CA (`<dataDir>/tls/ca.pem`). */
export function serverCaFingerprint(ctx: Pick<ServerContext, "dataDir">): string {
  return certificateFingerprint(readFileSync(path.join(ctx.dataDir, "tls", "ca.pem"), "utf8"));
}

/**
 * Registers POST /v1/agents/enroll, POST /v1/stacks/:stack/instances/:name/enrollment,
 * GET /v1/bundles/:id and GET /v1/agents.
 */
export function register(app: ServerApp, ctx: ServerContext): void {
  let fingerprint: string | undefined;
  const ca = () => {
    fingerprint ??= serverCaFingerprint(ctx);
    return fingerprint;
  };

  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/agents/enroll",
      summary: "Enrolls an agent: its one-time token (the credential) and its ed25519 public key",
      tags: ["agents"],
      auth: "none",
      action: "agent.enroll",
      body: enrollBody,
      response: enrolled,
    },
    async ({ body }) => {
      const agent = await enrollAgent(ctx.store, body, ca());
      await ctx.store.appendAudit({
        actor: `agent:${agent.stack}/${agent.instance}`,
        action: "agent.enroll",
        stack: agent.stack,
        target: agent.instance,
        outcome: "ok",
        reason: `enrolled (generation ${agent.generation})`,
        detail: { hostname: body.hostname ?? null, generation: agent.generation },
      });
      ctx.log(`agent ${agent.stack}/${agent.instance}: enrolled (generation ${agent.generation})`);
      // a connection still open with the previous key ends now: re-enrolling retires that key
      (ctx.agents as Partial<ServerAgentHub>).retire?.(agent, agent.generation, "re-enrolled with a new key");
      return agent;
    },
  );

  defineRoute(
    app,
    ctx,
    {
      method: "post",
      path: "/v1/stacks/:stack/instances/:name/enrollment",
      summary: "Mints a one-time enrollment token for the instance's agent (shown in this response only)",
      tags: ["agents"],
      auth: "token",
      role: "admin",
      action: "agent.enrollment",
      params: v.object({ stack: name, name }),
      stack: (params) => params.stack,
      target: (params) => params.name,
      response: minted,
    },
    async ({ params }) => {
      // an instance of the stack file that was never started is not in the store yet: it counts
      if (!(await ctx.store.getInstance(params.stack, params.name)) && !(await inStackFile(ctx, params))) {
        throw new GalleyError("NOT_FOUND", `no instance ${params.name} in stack ${params.stack}`, {
          hint: "GET /v1/stacks/:stack lists its instances",
        });
      }
      const ttlMs = ctx.settings.enrollmentTtlMs;
      const token = await mintEnrollment(ctx.store, {
        stack: params.stack,
        instance: params.name,
        caFingerprint: ca(),
        ttlMs,
      });
      return {
        stack: params.stack,
        instance: params.name,
        token,
        expiresAt: new Date(Date.now() + ttlMs).toISOString(),
      };
    },
  );

  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/bundles/:id",
      summary:
        "A prepared bundle (gzip tar) for a connected agent that was sent a job with it: Authorization: Agent <session>",
      tags: ["agents"],
      auth: "agent",
      params: v.object({ id: v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/, "a bundle id: 64 hex digits")) }),
      response: v.string(),
      contentType: "application/gzip",
    },
    async ({ actor, params }) => {
      const file = preparedBundleFile(params.id, cacheDir());
      // a bundle never sent to this agent is as unknown to it as one that does not exist
      const agent = actor?.kind === "agent" ? { stack: actor.stack, instance: actor.instance } : undefined;
      const sent = agent !== undefined && (ctx.agents.bundleAllowed?.(agent, params.id) ?? false);
      if (!sent || !existsSync(file)) {
        throw new GalleyError("BUNDLE_UNKNOWN", `the server has no bundle ${params.id}`, {
          hint: "the bundle is prepared when a run or deployment starts; ask the server to run the job again",
        });
      }
      const blob = await openAsBlob(file, { type: "application/gzip" });
      return new Response(blob.stream(), {
        status: 200,
        headers: { "content-type": "application/gzip", "content-length": String(statSync(file).size) },
      });
    },
  );

  defineRoute(
    app,
    ctx,
    {
      method: "get",
      path: "/v1/agents",
      summary:
        "The enrolled agents (of the stacks the token may view), connected or not, with when they were last seen",
      tags: ["agents"],
      auth: "token",
      role: "viewer",
      authorizeInHandler: true,
      query: v.object({ stack: v.optional(name) }),
      response: v.object({ agents: v.array(agentView) }),
    },
    async ({ c, actor, query }) => {
      if (query.stack !== undefined) authorize(c, query.stack, "viewer");
      const connections = new Map(ctx.agents.connections().map((a) => [`${a.stack}/${a.instance}`, a]));
      const stored = await ctx.store.listAgents(query.stack);
      return {
        agents: stored
          .filter((agent) => can(actor, agent.stack, "viewer"))
          .map((agent: AgentRecord) => {
            const live = connections.get(`${agent.stack}/${agent.instance}`);
            return {
              stack: agent.stack,
              instance: agent.instance,
              generation: agent.generation,
              enrolledAt: agent.enrolledAt,
              ...(live
                ? { lastSeenAt: live.lastSeenAt }
                : agent.lastSeenAt
                  ? { lastSeenAt: agent.lastSeenAt }
                  : {}),
              connected: live !== undefined && live.generation === agent.generation,
              ...(live ? { connectedAt: live.connectedAt, remote: live.remote } : {}),
            };
          }),
      };
    },
  );
}

// whether the served stack file (<kitchen>/stacks/<stack>.yaml) names the instance
async function inStackFile(ctx: ServerContext, params: { stack: string; name: string }): Promise<boolean> {
  const { loadStack } = await import("../../stacks/stack.ts");
  const file = path.join(ctx.kitchen, "stacks", `${params.stack}.yaml`);
  return loadStack(file, { decrypt: false }).then(
    (stack) => stack.name === params.stack && stack.instances.some((i) => i.name === params.name),
    () => false,
  );
}
