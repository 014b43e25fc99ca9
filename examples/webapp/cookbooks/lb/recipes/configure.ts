import type { RecipeContext } from "galley";
import { type AdminState, outOfService, reloadScript, statesScript, weightOf } from "./admin.ts";

/**
 * HAProxy's configuration from the stack state: one `server` line per online instance of the
 * backend layer. Runs at every configure, so an app instance that comes online or leaves is
 * added or removed without touching the load balancer by hand.
 *
 * Then each server's admin state through the runtime API: `drain` for an instance out of service
 * (`inService: false` in the stack state, or named in `lb.out_of_service`), `ready` otherwise;
 * and its weight, the stack state's `weight` (an A/B deployment's split; 100 otherwise).
 * Draining needs no reload, and a reload keeps every server's state (the reload saves them to
 * the server-state file HAProxy loads at start). Order: config → reload (if it changed) → states.
 */
export default function (r: RecipeContext) {
  const lb = r.attrs.lb;
  const layer: string = lb.backend_layer;
  const socket: string = lb.admin_socket;
  const stateFile: string = lb.server_state_file;
  // the port the layer's app listens on, from its environment when it sets one
  const app = r.stack.apps.find((a) => a.layers.includes(layer));
  const port = Number(app?.environment.PORT ?? lb.backend_port);
  const servers = r.stack
    .online(layer)
    .filter((instance) => instance.address !== undefined)
    .map((instance) => ({
      name: instance.name,
      address: instance.address,
      port,
      weight: weightOf(instance),
    }));
  const drained = outOfService(r);

  r.service("haproxy", { action: ["enable", "start"] });
  const reload = r.execute("reload haproxy keeping server states", {
    command: ["sh", "-c", reloadScript, "sh", socket, stateFile],
    action: "nothing",
    requires: "service[haproxy]",
  });
  const config = r.template("/etc/haproxy/haproxy.cfg", {
    source: "haproxy.cfg.eta",
    variables: { port: lb.port, healthCheck: lb.health_check, backend: layer, servers, socket, stateFile },
    mode: "0644",
    // a config HAProxy refuses never replaces the running one
    verify: "haproxy -c -q -f %{path}",
    // immediate: the states below are set on the process that runs the new configuration
    notifies: { action: "run", resource: reload, timing: "immediate" },
  });

  if (servers.length === 0) return;
  // NAME=STATE:WEIGHT; weights (an A/B split) change through the runtime API too, with no reload
  const wanted = servers.map(
    ({ name, weight }) => `${name}=${(drained.has(name) ? "drain" : "ready") satisfies AdminState}:${weight}`,
  );
  const args = [socket, stateFile, layer, ...wanted];
  r.execute(`haproxy server states of ${layer}`, {
    command: ["sh", "-c", statesScript, "sh", "apply", ...args],
    // a run where every server already has its state changes nothing
    notIf: ["sh", "-c", statesScript, "sh", "check", ...args],
    requires: [config, reload],
  });
}
