// The body of POST /v1/stacks/:stack/deployments from the Deploy form's fields (the CLI's flags by
// name, src/server/routes/deployments.ts): the strategies offered and the size flags each takes
// (src/deploy/strategies/*.ts), so a field the strategy refuses is never sent. Pure (no DOM).

/** The strategies the form offers, with the size flags each takes (deploy/strategies/*.ts). */
export const strategies: readonly { value: string; label: string; takes: readonly string[] }[] = [
  { value: "rolling", label: "Rolling", takes: ["batch", "max-unavailable", "max-fail"] },
  { value: "pilot", label: "Pilot (one first)", takes: ["batch", "max-unavailable", "max-fail"] },
  { value: "parallel", label: "Parallel", takes: ["max-fail"] },
  { value: "cutover", label: "Cutover (all at once)", takes: ["max-fail"] },
  { value: "ab", label: "A/B (a share of the instances)", takes: [] },
];

/** The body of a deployment request from the form's values (empty fields left out). */
export function deployBody(values: Record<string, string>): Record<string, unknown> {
  const body: Record<string, unknown> = { app: values.app };
  const revision = values.revision?.trim();
  if (revision) body.revision = revision;
  const strategy = strategies.find((s) => s.value === values.strategy) ?? strategies[0]!;
  if (strategy.value === "ab") body.ab = values.ab?.trim() || "10%";
  else body.strategy = strategy.value;
  for (const flag of strategy.takes) {
    const value = values[flag]?.trim();
    if (value) body[flag] = value;
  }
  return body;
}
