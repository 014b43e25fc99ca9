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
 * with the runner's progress when the latest `phase` entry is about that phase. `planned` (the
 * plan's batches, when known) lists instances that have no step yet as waiting.
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
    last.set(step.instance, step);
  }
  const batches = new Map<number, InstanceProgress[]>();
  for (const [instance, batch] of batchOf) {
    const step = last.get(instance);
    const phase = progress.get(instance);
    const row: InstanceProgress = step
      ? { instance, phase: step.phase, words: wordsOf(step.phase, step.status), status: step.status }
      : { instance, phase: "waiting", words: "waiting", status: "pending" };
    if (phase && (!step || phase.phase === step.phase)) {
      if (!step) Object.assign(row, { phase: phase.phase, words: phaseWords[phase.phase] ?? phase.phase });
      if (phase.status !== undefined && !step) row.status = phase.status;
      const text = progressText(phase);
      if (text) row.progress = text;
    }
    batches.set(batch, [...(batches.get(batch) ?? []), row]);
  }
  return [...batches.entries()]
    .sort(([a], [b]) => a - b)
    .map(([batch, instances]) => ({ number: batch + 1, instances }));
}

/** A runner's progress in words: "12 of 40 resources, 3 changed, 1 failed". */
export function progressText(phase: PhaseProgress): string | undefined {
  const parts: string[] = [];
  if (phase.done !== undefined && phase.total !== undefined)
    parts.push(`${phase.done} of ${phase.total} resources`);
  if (phase.changed) parts.push(`${phase.changed} changed`);
  if (phase.failed) parts.push(`${phase.failed} failed`);
  return parts.length > 0 ? parts.join(", ") : undefined;
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

/** The data of a feed entry as a runner's progress, when it is one. */
export function phaseOf(data: unknown): PhaseProgress | undefined {
  const d = data as Partial<PhaseProgress> | null;
  if (!d || typeof d.instance !== "string" || typeof d.phase !== "string") return undefined;
  return { ...d, instance: d.instance, phase: d.phase };
}
