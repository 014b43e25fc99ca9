import { builtinItem } from "../core/builtin-recipes.ts";
import { GalleyError } from "../core/errors.ts";
import type { Secrets } from "../core/secrets.ts";
import type { PreparedCookbooks } from "../cookbooks/prepared.ts";
import type { ConvergeJob } from "./agent-protocol.ts";
import type { FleetMember, FleetRunOptions } from "./pipeline.ts";

// The converge job a fleet host managed by an agent receives instead of an SSH connection: the
// prepared set by bundle id, its run list (Galley's own recipe files as `galley:` items), its
// attribute layers, its view of the stack, and the run's secret values.

/**
 * The job for one agent member of a fleet run. The prepared set must be a real bundle (the agent
 * fetches it by id): a kitchen without a lock is a USAGE error.
 *
 * @example agentJob(member, plan, prepared, secrets) // { bundle: "3f…", runList: ["galley:lifecycle/recipes/packages.ts", "web"], … }
 */
export function agentJob(
  member: FleetMember,
  options: Pick<FleetRunOptions, "mode" | "compile" | "builtins" | "command" | "waitMs">,
  prepared: PreparedCookbooks,
  secrets: Secrets,
): ConvergeJob {
  if (prepared.kind !== "bundle") {
    throw new GalleyError(
      "USAGE",
      `${member.name} is managed by an agent: agent instances need a locked kitchen`,
      {
        hint: "galley cookbooks lock (the agent fetches the run's cookbooks as a bundle, by id)",
      },
    );
  }
  if (options.compile.attributeFiles.length > 0) {
    throw new GalleyError(
      "USAGE",
      `${member.name} is managed by an agent: attribute files cannot be sent to it`,
      {
        hint: "put the attributes in the stack file (stack, layer or instance attributes)",
      },
    );
  }
  const runList = (member.runList ?? options.compile.runList).map((item) =>
    options.builtins?.has(item) ? builtinItem(item) : item,
  );
  const view = member.stack?.toJSON();
  let stack: ConvergeJob["stack"];
  if (member.stack && view) {
    const { version, instance, event, ...state } = view;
    stack = { state, instance, event, version, deploying: [...member.stack.deploying] };
  }
  return {
    bundle: prepared.id,
    runList,
    attributes: member.attributes.map((layer) => ({ source: layer.source, values: layer.values })),
    ...(stack ? { stack } : {}),
    mode: options.mode,
    command: options.command ?? "galley push",
    ...(options.waitMs !== undefined ? { waitMs: options.waitMs } : {}),
    secrets: [...secrets.allValues()],
  };
}
