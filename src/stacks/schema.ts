import * as v from "valibot";
import { providerSchema } from "../providers/index.ts";

// The stack file (stacks/<name>.yaml): a deployment's whole configuration, OpsWorks-style. The
// schema is the one source for validation, for the JSON Schema editors use, and for the docs.

/** The lifecycle events a layer has recipes for, in the order an instance meets them. */
export const lifecycleEvents = ["setup", "configure", "deploy", "undeploy", "shutdown"] as const;
export type LifecycleEvent = (typeof lifecycleEvents)[number];

const name = v.pipe(
  v.string(),
  v.regex(/^[a-z][a-z0-9-]{0,62}$/, "a name: lower-case letters, digits and dashes, starting with a letter"),
);
const attributes = v.optional(v.record(v.string(), v.unknown()), {});
/** The prefix of an environment value that names a secret; the loader replaces it (stack.ts). */
export const secretRefPrefix = "\u0000galley-secret:";

// `{ secret: db.password }`: the value of that attribute path (from the stack's attributes and its
// encrypted `secrets:` files); a marker until loadStack resolves it, so the type stays a string
const secretRef = v.pipe(
  v.strictObject({
    secret: v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "an attribute path, e.g. db.password"),
    ),
  }),
  v.transform(({ secret }) => `${secretRefPrefix}${secret}`),
);
const environment = v.optional(
  v.record(
    v.pipe(v.string(), v.regex(/^[A-Za-z_][A-Za-z0-9_]*$/)),
    v.union([v.string(), secretRef], "a string, or { secret: attribute.path }"),
  ),
  {},
);
const runList = v.optional(v.array(v.string()), []);

const percent = v.pipe(v.number(), v.minValue(0), v.maxValue(100));
const minutes = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(24 * 60));
// one direction of a layer's load-based scaling, as OpsWorks has it
const threshold = v.pipe(
  v.strictObject({
    /** average CPU use of the layer's online instances, percent */
    cpu: v.optional(percent),
    /** average memory use, percent */
    memory: v.optional(percent),
    /** average 1-minute load average */
    load: v.optional(v.pipe(v.number(), v.minValue(0))),
    /** instances started (up) or stopped (down) per scaling action */
    instances: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 1),
    /** how long the threshold must hold before the action */
    wait_minutes: v.optional(v.pipe(minutes, v.minValue(1)), 5),
    /** after a scaling action of the layer, metrics are ignored this long (cooldown) */
    ignore_minutes: v.optional(minutes, 10),
  }),
  v.check(
    (t) => t.cpu !== undefined || t.memory !== undefined || t.load !== undefined,
    "give at least one of cpu, memory or load",
  ),
);
const loadBased = v.strictObject({ up: threshold, down: threshold });

/** How an instance is reached for its runs (src/fleet/agent-protocol.ts instanceTransports): SSH from the controller, or its own agent. */
const transport = v.optional(v.picklist(["ssh", "agent"], "ssh or agent"));

const layer = v.strictObject({
  name,
  /** the transport of this layer's instances that set none (default ssh) */
  transport,
  short_name: v.optional(v.pipe(v.string(), v.regex(/^[a-z][a-z0-9-]{0,15}$/))),
  packages: v.optional(v.array(v.string()), []),
  recipes: v.optional(
    v.strictObject(
      Object.fromEntries(lifecycleEvents.map((event) => [event, runList])) as Record<
        LifecycleEvent,
        typeof runList
      >,
    ),
    {},
  ),
  attributes,
  environment,
  /** seconds the shutdown recipes may take before the host is stopped anyway (OpsWorks' default: 120) */
  shutdown_timeout: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(3600)), 120),
  /** the server replaces an instance of this layer whose agent went silent (OpsWorks' auto healing) */
  auto_healing: v.optional(v.boolean(), false),
  /** the server starts and stops the layer's `scaling: load` instances on its average load (docs/server.md, "Automation") */
  load_based: v.optional(loadBased),
});

const weekday = v.picklist(["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]);
const hours = v.array(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(23)));

/** Whether `zone` is an IANA time zone name this Node knows (Europe/Paris, UTC). */
export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const timezone = v.pipe(
  v.string(),
  v.check(isTimeZone, "an IANA time zone name, e.g. UTC, Europe/Paris or America/New_York"),
);

// the thresholds lived on each load instance before issue 13; they are the layer's now
const movedThresholds = v.optional(
  v.never(
    "load thresholds moved to the instance's layers: layers[].load_based: { up: { cpu: 80 }, down: { cpu: 20 } } (docs/stacks.md#scaling); the instance keeps scaling: { type: load }",
  ),
);

const scaling = v.optional(
  v.variant("type", [
    v.strictObject({ type: v.literal("always") }),
    v.strictObject({
      type: v.literal("time"),
      schedule: v.record(weekday, hours),
      /** the zone the schedule's weekdays and hours are in */
      timezone: v.optional(timezone, "UTC"),
    }),
    v.strictObject({ type: v.literal("load"), up: movedThresholds, down: movedThresholds }),
  ]),
  { type: "always" },
);

// each instance provider declares its own settings (src/providers/)
const provider = providerSchema;

const instance = v.strictObject({
  name,
  layers: v.pipe(v.array(name), v.minLength(1, "an instance belongs to at least one layer")),
  provider: v.optional(provider, { type: "container" }),
  /** ssh (default) or agent; unset: the first of its layers that sets one */
  transport,
  scaling,
  attributes,
});

const int = (min: number, max: number) => v.pipe(v.number(), v.integer(), v.minValue(min), v.maxValue(max));

// a path inside a release (shared files and dirs): relative, never climbing out of it
const releasePath = v.pipe(
  v.string(),
  v.regex(/^[^/]/, "a path relative to the release, e.g. log or config/app.env"),
  v.check(
    (p) => !p.split("/").some((part) => part === ".." || part === "." || part === ""),
    "a relative path without .., . or empty parts, e.g. log or config/app.env",
  ),
);

const absolutePath = v.pipe(
  v.string(),
  v.regex(/^\//, "an absolute path, e.g. /srv"),
  v.check((p) => !p.split("/").includes(".."), "an absolute path without .."),
);

const command = v.pipe(v.string(), v.minLength(1, "a command to run with sh -c"));

/** A hook: a command run in the release folder, or recipes (`cookbook::recipe`) the controller runs. */
const hook = v.union(
  [
    command,
    v.strictObject({
      recipes: v.pipe(
        v.array(v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]+(::[A-Za-z0-9_.-]+)?$/, "cookbook::recipe"))),
        v.minLength(1, "name at least one recipe"),
      ),
    }),
  ],
  "a command (a string) or { recipes: [cookbook::recipe, …] }",
);

const healthCheck = v.pipe(
  v.strictObject({
    http: v.optional(
      v.strictObject({
        path: v.optional(v.pipe(v.string(), v.regex(/^\//, "a URL path starting with /")), "/"),
        port: int(1, 65535),
        method: v.optional(v.picklist(["GET", "HEAD", "POST", "PUT", "OPTIONS"]), "GET"),
        /** the status code a healthy app answers */
        status: v.optional(int(100, 599), 200),
        /** a substring the answer's body must contain */
        body: v.optional(v.string()),
      }),
    ),
    command: v.optional(command),
    /** seconds per try */
    timeout: v.optional(int(1, 300), 5),
    /** tries before the instance counts as unhealthy */
    retries: v.optional(int(1, 1000), 10),
    /** seconds between tries */
    interval: v.optional(int(0, 300), 1),
  }),
  v.check(
    (check) => (check.http === undefined) !== (check.command === undefined),
    "give exactly one of http or command",
  ),
);

/** How Galley makes releases of an app on its instances (docs/deploy.md). */
const release = v.strictObject({
  /** releases live in <deploy_to>/<app>/{releases,shared,current,revisions.log} */
  deploy_to: v.optional(absolutePath, "/srv"),
  /** release folders kept per app */
  keep: v.optional(int(1, 100), 5),
  /** owner of the release files, and the user build, migrate and hooks run as */
  user: v.optional(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a user name"))),
  /** linked from shared/ into each release */
  shared: v.optional(
    v.strictObject({
      files: v.optional(v.array(releasePath), []),
      dirs: v.optional(v.array(releasePath), []),
    }),
    { files: [], dirs: [] },
  ),
  /** run in the release folder while it is prepared */
  build: v.optional(command),
  /** once per deployment, on one instance, before any instance switches */
  migrate: v.optional(hook),
  /** run after `current` switched */
  restart: v.optional(command),
  hooks: v.optional(
    v.strictObject({
      before_migrate: v.optional(hook),
      before_symlink: v.optional(hook),
      before_restart: v.optional(hook),
      after_restart: v.optional(hook),
    }),
    {},
  ),
  health_check: v.optional(healthCheck),
  /** a systemd unit Galley manages: /etc/systemd/system/<app>.service running `exec` in `current` */
  service: v.optional(
    v.strictObject({
      /** the command line, run with sh in the current release (e.g. node server.js) */
      exec: v.pipe(command, v.regex(/^[^\r\n]+$/, "one line")),
      /** the user it runs as (default: the release's user; else root) */
      user: v.optional(v.pipe(v.string(), v.regex(/^[a-z_][a-z0-9_-]{0,31}$/, "a user name"))),
      /** added to the app's environment in the unit's environment file */
      environment,
    }),
  ),
});

/** The load balancer an app's instances are drained from while they switch. */
const loadBalancer = v.strictObject({
  /** the stack's layer whose instances run the load balancer */
  layer: name,
  /** the load balancer's backend holding the app's instances (default: the app's first layer) */
  backend: v.optional(v.pipe(v.string(), v.minLength(1))),
  type: v.optional(v.picklist(["haproxy"]), "haproxy"),
  /** HAProxy's admin socket on the load balancer's instances */
  socket: v.optional(absolutePath, "/run/haproxy/admin.sock"),
  /** seconds an instance may take to finish its connections once drained */
  drain_timeout: v.optional(int(1, 3600), 30),
});

const app = v.pipe(
  v.strictObject({
    name,
    layers: v.pipe(v.array(name), v.minLength(1, "an app is deployed to at least one layer")),
    source: v.variant("type", [
      v.strictObject({ type: v.literal("git"), url: v.string(), revision: v.optional(v.string(), "HEAD") }),
      v.strictObject({ type: v.literal("archive"), url: v.string(), sha256: v.optional(v.string()) }),
    ]),
    environment,
    domains: v.optional(v.array(v.string()), []),
    deploy: v.optional(v.record(v.string(), v.unknown()), {}),
    /** absent: the layers' deploy recipes alone deploy the app */
    release: v.optional(release),
    load_balancer: v.optional(loadBalancer),
  }),
  // the backend defaults to the app's first layer
  v.transform(({ load_balancer, ...rest }) => ({
    ...rest,
    ...(load_balancer
      ? { load_balancer: { ...load_balancer, backend: load_balancer.backend ?? rest.layers[0]! } }
      : {}),
  })),
);

/** The whole stack file. */
export const stackSchema = v.strictObject({
  name,
  attributes,
  /** encrypted attribute files (galley secrets), relative to the stack file, merged over `attributes` */
  secrets: v.optional(v.array(v.pipe(v.string(), v.minLength(1))), []),
  /** a cookbooks.yaml (its kitchen's cookbooks/, locked) or a cookbooks folder, relative to the stack file */
  cookbooks: v.optional(v.string(), "../cookbooks.yaml"),
  layers: v.pipe(v.array(layer), v.minLength(1, "a stack has at least one layer")),
  instances: v.optional(v.array(instance), []),
  apps: v.optional(v.array(app), []),
});

export type StackFile = v.InferOutput<typeof stackSchema>;

/**
 * How an instance is reached: its own `transport`, else that of the first of its layers that sets
 * one, else ssh.
 *
 * @example instanceTransport(stack, stack.instances[0]!) // "agent"
 */
export function instanceTransport(stack: Pick<StackFile, "layers">, instance: Instance): "ssh" | "agent" {
  if (instance.transport) return instance.transport;
  for (const name of instance.layers) {
    const set = stack.layers.find((layer) => layer.name === name)?.transport;
    if (set) return set;
  }
  return "ssh";
}
export type Layer = StackFile["layers"][number];
export type Instance = StackFile["instances"][number];
export type App = StackFile["apps"][number];
export type AppRelease = NonNullable<App["release"]>;
export type HealthCheck = NonNullable<AppRelease["health_check"]>;
export type Hook = v.InferOutput<typeof hook>;
export type LoadBalancer = NonNullable<App["load_balancer"]>;
export type LoadBased = NonNullable<Layer["load_based"]>;
export type LoadThreshold = LoadBased["up"];
export type AppService = NonNullable<AppRelease["service"]>;
