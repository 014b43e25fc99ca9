import type { RecipeContext } from "galley";

/**
 * HAProxy's configuration from the stack state: one `server` line per online instance of the
 * backend layer. Runs at every configure, so an app instance that comes online or leaves is
 * added or removed without touching the load balancer by hand.
 */
export default function (r: RecipeContext) {
  const lb = r.attrs.lb;
  const layer: string = lb.backend_layer;
  // the port the layer's app listens on, from its environment when it sets one
  const app = r.stack.apps.find((a) => a.layers.includes(layer));
  const port = Number(app?.environment.PORT ?? lb.backend_port);
  const servers = r.stack
    .online(layer)
    .filter((instance) => instance.address !== undefined)
    .map((instance) => ({ name: instance.name, address: instance.address, port }));

  r.service("haproxy", { action: ["enable", "start"] });
  r.template("/etc/haproxy/haproxy.cfg", {
    source: "haproxy.cfg.eta",
    variables: { port: lb.port, healthCheck: lb.health_check, backend: layer, servers },
    mode: "0644",
    // a config HAProxy refuses never replaces the running one
    verify: "haproxy -c -q -f %{path}",
    notifies: { action: "reload", resource: "service[haproxy]", timing: "delayed" },
  });
}
