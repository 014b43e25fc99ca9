import { createAgentHub } from "./agents/hub.ts";
import { register as agentRoutes } from "./agents/routes.ts";
import { register as deploymentRoutes } from "./routes/deployments.ts";
import { register as eventRoutes } from "./routes/events.ts";
import { register as instanceRoutes } from "./routes/instances.ts";
import { backgroundService, register as stackRoutes } from "./routes/stacks.ts";
import { type RunningServer, type StartServerOptions, startServer } from "./server.ts";

// The whole server: startServer's core (store, TLS, tokens, audit) with the agent hub, every API
// area and the background work (events and deployments started through the API). `galley server`
// runs this; tests and benchmarks start it the same way.

/** Starts the whole server for a kitchen. */
export async function serveKitchen(
  options: Omit<StartServerOptions, "hub" | "routes" | "services">,
): Promise<RunningServer> {
  return startServer({
    ...options,
    hub: (ctx) => createAgentHub(ctx),
    routes: [stackRoutes, instanceRoutes, eventRoutes, deploymentRoutes, agentRoutes],
    services: [backgroundService],
  });
}
