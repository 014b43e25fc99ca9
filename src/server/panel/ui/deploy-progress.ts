// Where a deployment stands, from its recorded steps and the feed (pages/deployment.ts shows it):
// its batches, and per instance the phase it is in, in words, with that phase's status.

/** One step of a deployment on one instance (DeploymentStep, or a `step` feed entry's data). */
export interface Step {
  instance: string;
  /** 0-based */
  batch: number;
  phase: string;
  status: string;
  release?: string | undefined;
  startedAt?: string | undefined;
  finishedAt?: string | undefined;
}

/** A `phase` feed entry's data: a runner's progress on one instance. */
export interface PhaseProgress {
  instance: string;
  phase: string;
  done?: number | undefined;
  total?: number | undefined;
  changed?: number | undefined;
  failed?: number | undefined;
  status?: string | undefined;
}

/** One instance in its batch: its current phase and that phase's status. */
export interface InstanceProgress {
  instance: string;
  /** the step's phase ("drain", "prepare", …), or "waiting" before the first */
  phase: string;
  /** the phase in words: "draining", "health check", "back in service", … */
  words: string;
  status: string;
  /** the runner's progress within the phase: "12 of 40 resources" */
  progress?: string | undefined;
}

/** One batch: its 1-based number and its instances in the order they were first seen. */
export interface Batch {
  number: number;
  instances: InstanceProgress[];
}

/** The deploy phases in words, as the panel shows them. */
export const phaseWords: Record<string, string> = {
  drain: "draining",
  prepare: "preparing",
  migrate: "migrating",
  switch: "switching",
  health: "health check",
  undrain: "back in service",
  rollback: "rolled back",
  weight: "setting weight",
};

/** A phase in words; a failed one says so ("failed: health check"). */
export function wordsOf(phase: string, status: string): string {
  if (phase === "weight" && status === "succeeded") return "weight set";
  const words = phaseWords[phase] ?? phase;
  return status === "failed" ? `failed: ${words}` : words;
}

/** The steps with `step` recorded: a step of the same instance, batch and phase is replaced in place. */
export function withStep(steps: readonly Step[], step: Step): Step[] {
  const at = steps.findIndex(
    (s) => s.instance === step.instance && s.batch === step.batch && s.phase === step.phase,
  );
  if (at < 0) return [...steps, step];
  const next = [...steps];
  next[at] = { ...steps[at], ...step };
  return next;
}

/**
 * The batches of a deployment. An instance belongs to the batch of its first step (a rollback of
 * it recorded later, in another batch, stays with it); its phase is its last recorded step's,
 * with the runner's progress (its latest host phase since that step) while the step runs.
 * `planned` (the plan's batches, when known) lists instances that have no step yet as waiting.
 */
export function batchesOf(
  steps: readonly Step[],
  progress: ReadonlyMap<string, PhaseProgress> = new Map(),
  planned: readonly (readonly string[])[] = [],
): Batch[] {
  const batchOf = new Map<string, number>();
  const last = new Map<string, Step>();
  planned.forEach((names, batch) => {
    for (const name of names) batchOf.set(name, batch);
  });
  for (const step of steps) {
    if (!batchOf.has(step.instance)) batchOf.set(step.instance, step.batch);
    // the weights an A/B's end sets afterwards do not hide where a deployed instance got to
    const before = last.get(step.instance);
    if (
      step.phase === "weight" &&
      before !== undefined &&
      before.status !== "failed" &&
      step.status !== "failed"
    )
      continue;
    last.set(step.instance, step);
  }
  const batches = new Map<number, InstanceProgress[]>();
  for (const [instance, batch] of batchOf) {
    const step = last.get(instance);
    const phase = progress.get(instance);
    const row: InstanceProgress = step
      ? { instance, phase: step.phase, words: wordsOf(step.phase, step.status), status: step.status }
      : { instance, phase: "waiting", words: "waiting", status: "pending" };
    // a runner's progress (connecting, converging 3 of 12 …) within the step under way
    if (phase && (!step || step.status === "running")) {
      const text = progressText(phase);
      if (text) row.progress = text;
    }
    batches.set(batch, [...(batches.get(batch) ?? []), row]);
  }
  return [...batches.entries()]
    .sort(([a], [b]) => a - b)
    .map(([batch, instances]) => ({ number: batch + 1, instances }));
}

/** The host phases of a run (fleet/pipeline.ts HostPhase) in words. */
const hostWords: Record<string, string> = {
  waiting: "waiting",
  connecting: "connecting",
  facts: "reading facts",
  locked: "waiting for the host's run lock",
  compiling: "compiling",
  converging: "converging",
  done: "converged",
};

/** A runner's progress in words: "converging: 12 of 40 resources, 3 changed, 1 failed". */
export function progressText(phase: PhaseProgress): string | undefined {
  const counts: string[] = [];
  if (phase.done !== undefined && phase.total !== undefined)
    counts.push(`${phase.done} of ${phase.total} resources`);
  if (phase.changed) counts.push(`${phase.changed} changed`);
  if (phase.failed) counts.push(`${phase.failed} failed`);
  const words = hostWords[phase.phase] ?? phaseWords[phase.phase] ?? phase.phase;
  return counts.length > 0 ? `${words}: ${counts.join(", ")}` : words;
}

/** The data of a feed entry as a step, when it is one. */
export function stepOf(data: unknown): Step | undefined {
  const d = data as Partial<Step> | null;
  if (!d || typeof d.instance !== "string" || typeof d.batch !== "number" || typeof d.phase !== "string")
    return undefined;
  return {
    ...d,
    instance: d.instance,
    batch: d.batch,
    phase: d.phase,
    status: String(d.status ?? "running"),
  };
}

/** The data of a feed entry as a runner's progress, when it is one (a step's phase entry is a step: stepOf). */
export function phaseOf(data: unknown): PhaseProgress | undefined {
  const d = data as Partial<PhaseProgress> | null;
  if (!d || typeof d.instance !== "string" || typeof d.phase !== "string") return undefined;
  return { ...d, instance: d.instance, phase: d.phase };
}

/** A deployment's parameters in words: "batch 1, instances app2 app3, weights app1=100 app2=50". */
export function paramsText(params: Readonly<Record<string, unknown>>): string {
  const value = (v: unknown): string => {
    if (Array.isArray(v)) return v.map(value).join(" ");
    if (v !== null && typeof v === "object")
      return Object.entries(v)
        .map(([k, x]) => `${k}=${value(x)}`)
        .join(" ");
    return String(v);
  };
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null)
    .map(([k, v]) => `${k} ${value(v)}`)
    .join(", ");
}
