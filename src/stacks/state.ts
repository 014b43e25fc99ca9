import { GalleyError } from "../core/errors.ts";
import type { InstanceStatus } from "../store/store.ts";
import type { AppRelease, LifecycleEvent, StackFile } from "./schema.ts";

// The stack state: the JSON every recipe run of a stack receives as `r.stack` (OpsWorks' stack
// configuration and deployment attributes). It is stored, versioned, with every change.

/** One instance as the stack state shows it. */
export interface StateInstance {
  name: string;
  layers: string[];
  status: InstanceStatus;
  /** the address other instances reach it at; undefined until the host exists */
  address: string | undefined;
  hostname: string;
  provider: string;
  /** in the load balancer's service: false while a deployment drains it */
  inService: boolean;
  /** its load-balancer weight, 0..256: 100 unless an A/B deployment splits the traffic */
  weight: number;
}

/** One layer as the stack state shows it. */
export interface StateLayer {
  name: string;
  shortName: string;
  packages: string[];
  attributes: Record<string, unknown>;
  environment: Record<string, string>;
  /** names of the layer's instances, in the stack file's order */
  instances: string[];
}

/** One app as the stack state shows it. */
export interface StateApp {
  name: string;
  layers: string[];
  source: StackFile["apps"][number]["source"];
  environment: Record<string, string>;
  domains: string[];
  deploy: Record<string, unknown>;
}

/** The whole stack state. */
export interface StackState {
  stack: { name: string; attributes: Record<string, unknown> };
  layers: StateLayer[];
  instances: StateInstance[];
  apps: StateApp[];
}

/** An app this run deploys: its resolved revision and where Galley put its archive on the host. */
export interface DeployingApp extends StateApp {
  /** the commit (git) or the archive's sha256 */
  revision: string;
  /** the archive (tar.gz) on the instance */
  archive: string;
  /** where Galley makes this deployment's release (apps with a `release` section only) */
  release?: ReleaseTarget;
}

/**
 * One deployment's release of an app on its instances: `<deploy_to>/<app>/releases/<id>`, with
 * `current` switched to it (src/lifecycle/releases.ts makes it; Galley's release recipes use it).
 */
export interface ReleaseTarget {
  /** the deployment id, the release folder's name */
  id: string;
  /** <deploy_to>/<app> */
  dir: string;
  /** <dir>/releases/<id> */
  path: string;
  /** <dir>/current */
  current: string;
  /** <dir>/shared */
  shared: string;
  /** the stack file's release object, defaults applied */
  settings: AppRelease;
  /** the systemd unit Galley manages (release.service) */
  service?: ServiceTarget;
}

/** Where an app's unit and environment file live on its instances, and what runs. */
export interface ServiceTarget {
  /** the unit's name, the app's: `systemctl restart <name>` */
  name: string;
  /** /etc/systemd/system/<app>.service */
  unit: string;
  /** <deploy_to>/<app>/<app>.env, mode 0600: the app's environment, its secrets too */
  envFile: string;
  /** the command line, run with sh in `current` */
  exec: string;
  /** the user it runs as; undefined: root */
  user: string | undefined;
  /** the app's environment, then the service's own */
  environment: Record<string, string>;
  /** the systemctl the recipes run */
  systemctl: string;
}

/** What an instance needs to build the state: its record's status, address and service. */
export interface InstanceFacts {
  name: string;
  status: InstanceStatus;
  address: string | undefined;
  /** the record's inService; left out, in service */
  inService?: boolean | undefined;
  /** the record's weight; left out, 100 */
  weight?: number | undefined;
}

/**
 * The stack state from the stack file and the instances' current statuses and addresses. Its
 * JSON is deterministic (stack-file order), so equal states compare equal as text.
 */
export function buildStackState(stack: StackFile, instances: readonly InstanceFacts[]): StackState {
  const known = new Map(instances.map((instance) => [instance.name, instance]));
  return {
    stack: { name: stack.name, attributes: stack.attributes },
    layers: stack.layers.map((layer) => ({
      name: layer.name,
      shortName: layer.short_name ?? layer.name,
      packages: layer.packages,
      attributes: layer.attributes,
      environment: layer.environment,
      instances: stack.instances.filter((i) => i.layers.includes(layer.name)).map((i) => i.name),
    })),
    instances: stack.instances.map((instance) => ({
      name: instance.name,
      layers: instance.layers,
      status: known.get(instance.name)?.status ?? "stopped",
      address: known.get(instance.name)?.address,
      hostname: instance.name,
      provider: instance.provider.type,
      inService: known.get(instance.name)?.inService ?? true,
      weight: known.get(instance.name)?.weight ?? 100,
    })),
    apps: stack.apps.map((app) => ({
      name: app.name,
      layers: app.layers,
      source: app.source,
      environment: app.environment,
      domains: app.domains,
      deploy: app.deploy,
    })),
  };
}

/**
 * `r.stack` in a recipe: the stack state seen from one instance, with helpers for the usual
 * questions.
 *
 * @example
 * // lb cookbook, configure recipe: a backend per online app instance
 * const backends = r.stack.online("app").map((i) => `server ${i.name} ${i.address}:3000 check`);
 */
export class StackView {
  /** the lifecycle event this run belongs to (or "run-recipes") */
  readonly event: LifecycleEvent | "run-recipes";
  /** the stack-state version this run applies */
  readonly version: number;
  /** the apps this run deploys (deploy: revision and archive on this host) or undeploys (undeploy: revision and archive empty) */
  readonly deploying: readonly DeployingApp[];
  readonly #state: StackState;
  readonly #self: string;

  constructor(
    state: StackState,
    self: string,
    run: { event: LifecycleEvent | "run-recipes"; version: number; deploying?: readonly DeployingApp[] },
  ) {
    this.#state = state;
    this.#self = self;
    this.event = run.event;
    this.version = run.version;
    this.deploying = run.deploying ?? [];
    if (!state.instances.some((instance) => instance.name === self))
      throw new GalleyError("STACK_INVALID", `instance ${self} is not in stack ${state.stack.name}`);
  }

  /** the stack's name */
  get name(): string {
    return this.#state.stack.name;
  }

  /** the stack's own attributes (also merged into r.attrs at the stack level) */
  get attributes(): Readonly<Record<string, unknown>> {
    return this.#state.stack.attributes;
  }

  /** this instance */
  get instance(): StateInstance {
    return this.#state.instances.find((instance) => instance.name === this.#self)!;
  }

  get layers(): readonly StateLayer[] {
    return this.#state.layers;
  }

  get apps(): readonly StateApp[] {
    return this.#state.apps;
  }

  /** every instance of the stack, or of one layer */
  instances(layer?: string): StateInstance[] {
    if (layer !== undefined) this.layer(layer);
    return this.#state.instances.filter((instance) => layer === undefined || instance.layers.includes(layer));
  }

  /** the online instances of the stack, or of one layer, in the stack file's order */
  online(layer?: string): StateInstance[] {
    return this.instances(layer).filter((instance) => instance.status === "online");
  }

  /**
   * the online instances of the stack, or of one layer, that are in service: where a load balancer
   * sends traffic (a deployment drains an instance out of it while it switches)
   */
  inService(layer?: string): StateInstance[] {
    return this.online(layer).filter((instance) => instance.inService);
  }

  /** a layer by name; an unknown name is an error that lists the stack's layers */
  layer(name: string): StateLayer {
    const layer = this.#state.layers.find((l) => l.name === name);
    if (!layer) {
      throw new GalleyError("STACK_INVALID", `stack ${this.name} has no layer "${name}"`, {
        hint: `its layers are: ${this.#state.layers.map((l) => l.name).join(", ")}`,
      });
    }
    return layer;
  }

  /** an app by name; an unknown name is an error that lists the stack's apps */
  app(name: string): StateApp {
    const app = this.#state.apps.find((a) => a.name === name);
    if (!app) {
      throw new GalleyError("STACK_INVALID", `stack ${this.name} has no app "${name}"`, {
        hint: `its apps are: ${this.#state.apps.map((a) => a.name).join(", ") || "none"}`,
      });
    }
    return app;
  }

  /** the apps deployed to this instance: those of its layers */
  appsHere(): StateApp[] {
    const layers = this.instance.layers;
    return this.#state.apps.filter((app) => app.layers.some((layer) => layers.includes(layer)));
  }

  /** whether this instance belongs to `layer` */
  inLayer(layer: string): boolean {
    return this.instance.layers.includes(layer);
  }

  /** the whole state as plain JSON */
  toJSON(): StackState & { version: number; instance: string; event: string } {
    return { ...this.#state, version: this.version, instance: this.#self, event: this.event };
  }
}

// Types `r.stack` in recipes: core declares the slot, the stack view fills it.
declare module "../core/recipe.ts" {
  interface RecipeStackView extends StackView {}
}
