import * as v from "valibot";
import { containerProvider } from "./container/provider.ts";
import type { InstanceProvider } from "./provider.ts";
import { sshProvider } from "./ssh.ts";

// The instance providers, by the name a stack file gives as `provider: {type: …}`. Adding one is
// adding its file and a line here: the stack file's schema and the lifecycle dispatch follow.

/** Every instance provider, by name. */
export const instanceProviders = {
  ssh: sshProvider,
  container: containerProvider,
} as const;

/** A provider's name: a key of the registry. */
export type InstanceProviderName = keyof typeof instanceProviders;

/** The `provider:` settings of one instance, of whichever provider. */
export type ProviderSettings = {
  [K in InstanceProviderName]: (typeof instanceProviders)[K] extends InstanceProvider<infer S> ? S : never;
}[InstanceProviderName];

/** `provider:` in the stack file: one of the registry's providers, chosen by `type`. */
export const providerSchema = v.variant(
  "type",
  Object.values(instanceProviders).map((provider) => provider.schema) as unknown as v.VariantOptions<"type">,
) as v.GenericSchema<unknown, ProviderSettings>;

/** The provider of that name; undefined when the registry has none. */
export function instanceProvider(name: string): InstanceProvider<ProviderSettings> | undefined {
  return Object.hasOwn(instanceProviders, name)
    ? (instanceProviders[name as InstanceProviderName] as unknown as InstanceProvider<ProviderSettings>)
    : undefined;
}
