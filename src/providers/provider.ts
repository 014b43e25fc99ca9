import type * as v from "valibot";
import type { SshTarget } from "../hosts/target.ts";

// An instance provider: how an instance of a stack becomes a host and stops being one. Each
// provider is one file on this interface and one line in the registry (./index.ts).

/** What starting an instance gave: its address and how to reach it, or why it failed. */
export type Provisioned = { ok: true; address: string; target: SshTarget } | { ok: false; error: string };

/** Where the stack is: what a provider needs of it. */
export interface ProviderContext {
  /** the stack file (paths in provider settings are relative to its folder) */
  file: string;
  /** the kitchen: the folder holding stacks/ and .galley/ */
  kitchen: string;
}

/** An instance as a provider sees it: its name and its `provider:` settings from the stack file. */
export interface ProvidedInstance<S> {
  name: string;
  provider: S;
}

/** One instance provider: the schema of its settings in the stack file and the three things it does. */
export interface InstanceProvider<S extends { type: string }> {
  /** `provider:` of an instance in the stack file; its `type` literal is the registry key */
  schema: v.GenericSchema<unknown, S>;
  /** makes (or boots again) the instances' hosts; one result per instance */
  provision(
    context: ProviderContext,
    instances: readonly ProvidedInstance<S>[],
    log: (line: string) => void,
  ): Promise<Map<string, Provisioned>>;
  /** how to reach the instances that run, without starting anything */
  reach(
    context: ProviderContext,
    instances: readonly ProvidedInstance<S>[],
  ): Promise<Map<string, Provisioned>>;
  /** stops the instances' hosts (or lets them be, when Galley did not make them) */
  release(
    context: ProviderContext,
    instances: readonly ProvidedInstance<S>[],
    log: (line: string) => void,
  ): Promise<void>;
}

/** Declares a provider, checking it against the interface and keeping its settings' type. */
export function defineInstanceProvider<S extends { type: string }>(
  provider: InstanceProvider<S>,
): InstanceProvider<S> {
  return provider;
}
