// The API's response shapes the panel reads (docs/server.md; the brief's "Panel API additions").
// Only what the pages use is typed; the server sends more.

/** A lifecycle event as listed (src/store/store.ts EventRecord). */
export interface EventRecord {
  id: number;
  stack: string;
  kind: string;
  args?: unknown;
  stateVersion?: number | undefined;
  status: string;
  createdAt: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
}

/** A deployment as recorded (src/store/store.ts DeploymentRecord). */
export interface DeploymentRecord {
  id: number;
  stack: string;
  app: string;
  revision: string;
  requested: string;
  strategy: string;
  params: Record<string, unknown>;
  user: string;
  rollbackOf?: number | undefined;
  status: string;
  createdAt: string;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
}

/** One stack in GET /v1/overview. */
export interface StackOverview {
  name: string;
  file: string;
  invalid?: { code: string; message: string } | undefined;
  /** null: no state recorded yet */
  stateVersion: number | null;
  layers: { name: string; instances: string[] | number }[];
  counts: Record<string, number>;
  apps: {
    name: string;
    deployed: {
      id: number;
      revision: string;
      requested: string;
      status: string;
      finishedAt?: string | null | undefined;
    } | null;
  }[];
  events: EventRecord[];
}

/** GET /v1/overview. */
export interface Overview {
  stacks: StackOverview[];
}

/** An instance in GET /v1/stacks/:stack/summary. */
export interface InstanceSummary {
  name: string;
  layers: string[];
  status: string;
  address?: string | null | undefined;
  transport: "ssh" | "agent";
  provider: string;
  scaling: "always" | "time" | "load";
  inService: boolean;
  weight: number;
  agent: { connected: boolean; lastSeenAt?: string | null | undefined; lastRun?: unknown } | null;
}

/** GET /v1/stacks/:stack/summary. */
export interface StackSummary {
  name: string;
  file: string;
  /** the stack file does not load now: what is shown is the stack as last applied */
  invalid?: { code: string; message: string } | undefined;
  /** null: no state recorded yet */
  stateVersion: number | null;
  layers: {
    name: string;
    shortName?: string | undefined;
    autoHealing: boolean;
    loadBased?: unknown;
    instances: string[];
  }[];
  instances: InstanceSummary[];
  apps: {
    name: string;
    layers: string[];
    /** null: the app is known from its deployments only */
    source: { type: string; url?: string; revision?: string; sha256?: string } | null;
    deployed: DeploymentRecord | null;
    /** the A/B deployment under way: B's instances and the split */
    ab: {
      deployment: number;
      revision: string;
      requested: string;
      base: number | null;
      instances: string[];
      share: string | null;
      expected: string | null;
      weights: Record<string, number>;
    } | null;
  }[];
  events: EventRecord[];
  deployments: DeploymentRecord[];
}
