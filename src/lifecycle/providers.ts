import { GalleyError } from "../core/errors.ts";
import { instanceProvider, instanceProviders } from "../providers/index.ts";
import type { ProvidedInstance, Provisioned } from "../providers/provider.ts";
import type { Instance } from "../stacks/schema.ts";
import type { StackContext } from "./context.ts";

// How an instance becomes a host and stops being one: each instance goes to its provider in the
// registry (src/providers/index.ts), all instances of one provider in one call.

export type { Provisioned };

/** Makes (or boots again) the instances' hosts, in parallel per provider; one result per instance. */
export async function provision(
  context: StackContext,
  instances: readonly Instance[],
  log: (line: string) => void,
): Promise<Map<string, Provisioned>> {
  return merged(
    await Promise.all(byProvider(instances).map(([p, group]) => p.provision(context, group, log))),
  );
}

/** How to reach instances that run (their container hosts' addresses, or their ssh settings): one fleet read for all. */
export async function reach(
  context: StackContext,
  instances: readonly Instance[],
): Promise<Map<string, Provisioned>> {
  return merged(await Promise.all(byProvider(instances).map(([p, group]) => p.reach(context, group))));
}

/** Stops the instances' hosts (container: a clean shutdown, the disk is kept; ssh: nothing to do). */
export async function release(
  context: StackContext,
  instances: readonly Instance[],
  log: (line: string) => void,
): Promise<void> {
  for (const [provider, group] of byProvider(instances)) await provider.release(context, group, log);
}

type Provider = NonNullable<ReturnType<typeof instanceProvider>>;

/** The instances grouped by their provider, in the order the providers first appear; an unknown provider is an error. */
export function byProvider(
  instances: readonly Instance[],
): [Provider, ProvidedInstance<Instance["provider"]>[]][] {
  const groups = new Map<string, [Provider, ProvidedInstance<Instance["provider"]>[]]>();
  for (const instance of instances) {
    const type = instance.provider.type;
    let group = groups.get(type);
    if (!group) {
      const provider = instanceProvider(type);
      if (!provider) {
        throw new GalleyError("STACK_INVALID", `instance ${instance.name}: no instance provider "${type}"`, {
          hint: `the instance providers are: ${Object.keys(instanceProviders).join(", ")}`,
        });
      }
      group = [provider, []];
      groups.set(type, group);
    }
    group[1].push({ name: instance.name, provider: instance.provider });
  }
  return [...groups.values()];
}

function merged(maps: Map<string, Provisioned>[]): Map<string, Provisioned> {
  return new Map(maps.flatMap((map) => [...map]));
}
