import { type FleetOptions, type HostOutcome, runFleet } from "./pipeline.ts";

export {
  type FleetMember,
  type FleetOptions,
  type HostOutcome,
  type HostPhase,
  type MemberAttributes,
  type OutcomeError,
  type RemoteHost,
  remoteStateDir,
} from "./pipeline.ts";

/**
 * Converges every member in parallel (at most `forks` at once) and returns each host's outcome,
 * in the members' order: one batch of the pipeline (src/fleet/pipeline.ts), the cookbooks resolved
 * once for all hosts. One host's failure never stops the others; with `maxFailPercent`, hosts not
 * yet started are skipped once too many failed.
 */
export async function pushFleet(options: FleetOptions): Promise<Map<string, HostOutcome>> {
  const { members, ...rest } = options;
  return runFleet({ ...rest, batches: [members] });
}
