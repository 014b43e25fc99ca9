import * as os from "node:os";
import * as path from "node:path";
import { errorMessage } from "../core/errors.ts";
import { type SshTarget, targetDefaults } from "../hosts/target.ts";
import type { Instance } from "../stacks/schema.ts";
import type { StackContext } from "./context.ts";

// How an instance becomes a host and stops being one. `container`: a host on this machine made by
// `galley hosts` (in the kitchen's fleet, named after the instance). `ssh`: a machine that exists
// already; starting it means reaching it, stopping it leaves it running (Galley stops managing it).

/** What starting an instance gave: its address and how to reach it, or why it failed. */
export type Provisioned = { ok: true; address: string; target: SshTarget } | { ok: false; error: string };

/** Makes (or boots again) the instances' hosts, in parallel per provider; one result per instance. */
export async function provision(
  context: StackContext,
  instances: readonly Instance[],
  log: (line: string) => void,
): Promise<Map<string, Provisioned>> {
  const results = new Map<string, Provisioned>();
  for (const instance of instances) {
    const provider = instance.provider;
    if (provider.type === "ssh") results.set(instance.name, sshProvisioned(context, instance, provider));
  }
  const containers = instances.filter((i) => i.provider.type === "container");
  if (containers.length === 0) return results;
  const hosts = await import("../providers/container/index.ts");
  for (const init of ["systemd", "sysv"] as const) {
    const group = containers.filter(
      (i) => i.provider.type === "container" && (i.provider.init ?? "systemd") === init,
    );
    if (group.length === 0) continue;
    let failure: string | undefined;
    try {
      await hosts.up({
        cwd: context.kitchen,
        names: group.map((i) => i.name),
        image: "debian-bookworm",
        init,
        log,
      });
    } catch (error) {
      failure = errorMessage(error);
    }
    const { paths, fleet } = await hosts.list(context.kitchen);
    for (const instance of group) {
      const host = fleet?.host(instance.name);
      if (host?.status !== "running") {
        results.set(instance.name, {
          ok: false,
          error: failure ?? `host ${instance.name} is ${host?.status ?? "missing"}`,
        });
        continue;
      }
      results.set(instance.name, containerHost(instance.name, host.address, paths));
    }
  }
  return results;
}

/** How to reach instances that run (their container hosts' addresses, or their ssh settings): one fleet read for all. */
export async function reach(
  context: StackContext,
  instances: readonly Instance[],
): Promise<Map<string, Provisioned>> {
  const reached = new Map<string, Provisioned>();
  const containers = instances.filter((i) => i.provider.type === "container");
  const fleet = containers.length
    ? await (await import("../providers/container/index.ts")).list(context.kitchen)
    : undefined;
  for (const instance of instances) {
    if (instance.provider.type === "ssh") {
      reached.set(instance.name, sshProvisioned(context, instance, instance.provider));
      continue;
    }
    const host = fleet?.fleet?.host(instance.name);
    reached.set(
      instance.name,
      host?.status === "running"
        ? containerHost(instance.name, host.address, fleet!.paths)
        : { ok: false, error: `host ${instance.name} is ${host?.status ?? "missing"} (galley hosts list)` },
    );
  }
  return reached;
}

/** Stops the instances' hosts (container: a clean shutdown, the disk is kept; ssh: nothing to do). */
export async function release(
  context: StackContext,
  instances: readonly Instance[],
  log: (line: string) => void,
): Promise<void> {
  const containers = instances.filter((i) => i.provider.type === "container").map((i) => i.name);
  if (containers.length === 0) return;
  const hosts = await import("../providers/container/index.ts");
  const { fleet } = await hosts.list(context.kitchen);
  const known = containers.filter((name) => fleet?.host(name));
  if (known.length > 0) await hosts.onHosts(context.kitchen, "stop", known, log);
}

// the fleet's key as root, checked against the fleet's known_hosts
function containerHost(
  name: string,
  address: string,
  paths: { clientKey: string; knownHosts: string },
): Provisioned {
  return {
    ok: true,
    address,
    target: {
      ...targetDefaults,
      name,
      address,
      user: "root",
      keyFile: paths.clientKey,
      become: false,
      knownHostsFile: paths.knownHosts,
    },
  };
}

function sshProvisioned(
  context: StackContext,
  instance: Instance,
  provider: Extract<Instance["provider"], { type: "ssh" }>,
): Provisioned {
  const user = provider.user ?? "root";
  const home = os.homedir();
  return {
    ok: true,
    address: provider.address,
    target: {
      ...targetDefaults,
      name: instance.name,
      address: provider.address,
      port: provider.port ?? targetDefaults.port,
      user,
      ...(provider.key
        ? { keyFile: path.resolve(path.dirname(context.file), provider.key.replace(/^~(?=\/)/, home)) }
        : {}),
      become: provider.become ?? user !== "root",
      knownHostsFile: provider.known_hosts
        ? path.resolve(path.dirname(context.file), provider.known_hosts.replace(/^~(?=\/)/, home))
        : path.join(home, ".ssh", "known_hosts"),
      hostKeyChecking: provider.host_key_checking ?? "strict",
    },
  };
}
