import { FeedWriter, runFeed } from "../deploy/feed.ts";
import { Lifecycle } from "../lifecycle/lifecycle.ts";
import { createAgentHub } from "./agents/hub.ts";
import { register as agentRoutes } from "./agents/routes.ts";
import { startAutomation } from "./automation/automation.ts";
import type { LifecycleOpener } from "./automation/types.ts";
import type { ServerContext } from "./context.ts";
import { register as panelRoutes } from "./panel/serve.ts";
import { register as abRoutes } from "./routes/ab.ts";
import { register as cloneRoutes } from "./routes/clone.ts";
import { register as deploymentRoutes } from "./routes/deployments.ts";
import { register as eventRoutes } from "./routes/events.ts";
import { register as feedRoutes } from "./routes/feed.ts";
import { register as instanceRoutes } from "./routes/instances.ts";
import { register as overviewRoutes } from "./routes/overview.ts";
import { register as reportRoutes } from "./routes/reports.ts";
import { register as runRoutes } from "./routes/runs.ts";
import { backgroundService, openServedStack, register as stackRoutes } from "./routes/stacks.ts";
import { type RunningServer, type ServerService, type StartServerOptions, startServer } from "./server.ts";

// The whole server: startServer's core (store, TLS, tokens, audit) with the agent hub, every API
// area, the background work (events and deployments started through the API) and the automation
// (healing, schedules, load-based scaling). `galley server` runs this; tests and benchmarks too.

/** Starts the whole server for a kitchen. */
export async function serveKitchen(
  options: Omit<StartServerOptions, "hub" | "routes" | "services">,
): Promise<RunningServer> {
  return startServer({
    ...options,
    hub: (ctx) => createAgentHub(ctx),
    routes: [
      stackRoutes,
      instanceRoutes,
      runRoutes,
      eventRoutes,
      deploymentRoutes,
      abRoutes,
      agentRoutes,
      overviewRoutes,
      reportRoutes,
      cloneRoutes,
      feedRoutes,
      panelRoutes,
    ],
    services: [agentFeed, backgroundService, (ctx) => startAutomation(ctx, { open: servedLifecycles(ctx) })],
  });
}

/** The automation opens stacks as the API does: with the server's agents and their enrollment. */
function servedLifecycles(ctx: ServerContext): LifecycleOpener {
  return async (stack) => {
    const context = await openServedStack(ctx, stack);
    // what the automation runs (healing, schedules, load) shows in the feed like the API's runs
    const feed = runFeed({ store: context.store, log: ctx.log, kitchen: ctx.kitchen }, stack);
    try {
      const lifecycle = await Lifecycle.open(context, feed.lifecycle({ log: (line) => ctx.log(line) }));
      return {
        lifecycle,
        close: async () => {
          await feed.close();
          await context.store.close();
        },
      };
    } catch (error) {
      await feed.close();
      await context.store.close();
      throw error;
    }
  };
}

/** Agents connecting and going away, in the feed (kind agent, subject instance:NAME). */
function agentFeed(ctx: ServerContext): ServerService {
  const writers = new Map<string, FeedWriter>();
  const write = (stack: string, instance: string, data: { connected: boolean; reason?: string }) => {
    let writer = writers.get(stack);
    if (writer === undefined) {
      writer = new FeedWriter(ctx.store, stack, { log: ctx.log });
      writers.set(stack, writer);
    }
    writer.append({ kind: "agent", subject: `instance:${instance}`, data });
  };
  const off = [
    ctx.agents.on("connected", (target) => write(target.stack, target.instance, { connected: true })),
    ctx.agents.on("lost", (target, reason) =>
      write(target.stack, target.instance, { connected: false, reason }),
    ),
  ];
  return {
    stop: async () => {
      for (const unsubscribe of off) unsubscribe();
      await Promise.all([...writers.values()].map((w) => w.close()));
    },
  };
}
