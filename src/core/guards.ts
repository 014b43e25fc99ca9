import type { CatalogResource, Guard } from "./catalog.ts";
import type { Host } from "./host.ts";

/** A run's guards: each asks the host; a composite's are asked once per run and remembered. */
export class Guards {
  readonly host: Host;
  readonly guardResults = new Map<Guard, Promise<boolean>>();

  constructor(host: Host) {
    this.host = host;
  }

  /** A reason to skip when a guard says so, else undefined. */
  async guardsSay(resource: CatalogResource): Promise<string | undefined> {
    // a composite's guards are asked once per run, before its first resource, as Chef does
    for (const parent of resource.parentGuards ?? []) {
      if (parent.onlyIf && !(await this.evaluateOnce(parent.onlyIf)))
        return `onlyIf guard of ${parent.of} is false`;
      if (parent.notIf && (await this.evaluateOnce(parent.notIf)))
        return `notIf guard of ${parent.of} is true`;
    }
    const evaluate = resource.children ? this.evaluateOnce.bind(this) : this.evaluate.bind(this);
    if (resource.onlyIf && !(await evaluate(resource.onlyIf))) return "onlyIf guard is false";
    if (resource.notIf && (await evaluate(resource.notIf))) return "notIf guard is true";
    return undefined;
  }

  /** Evaluates a guard the first time it is asked; later asks get the same answer. */
  evaluateOnce(guard: Guard): Promise<boolean> {
    let result = this.guardResults.get(guard);
    if (!result) {
      result = this.evaluate(guard);
      this.guardResults.set(guard, result);
    }
    return result;
  }

  /** Evaluates a guard on the host: a function's truthiness, or a command's exit code 0. */
  async evaluate(guard: Guard): Promise<boolean> {
    if ("fn" in guard) return Boolean(await guard.fn({ host: this.host, facts: await this.host.facts() }));
    const argv = typeof guard.command === "string" ? ["sh", "-c", guard.command] : guard.command;
    const result = await this.host.exec(argv);
    return result.exitCode === 0;
  }
}
