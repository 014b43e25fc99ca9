import { register as agentRoutes } from "./agents/routes.ts";
import { createAgentHub } from "./agents/hub.ts";
import { type RunningServer, type StartServerOptions, startServer } from "./server.ts";

// The whole server: startServer's core (store, TLS, tokens, audit) with the agent hub and every
// API area. `galley server` runs this; tests and benchmarks start it the same way.

/** Starts the whole server for a kitchen. */
export async function serveKitchen(
  options: Omit<StartServerOptions, "hub" | "routes">,
): Promise<RunningServer> {
  return startServer({
    ...options,
    hub: (ctx) => createAgentHub(ctx),
    routes: [agentRoutes],
  });
}
