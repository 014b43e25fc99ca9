import * as v from "valibot";
import { errorMessage } from "../../core/errors.ts";
import { targetDefaults } from "../../hosts/target.ts";
import { defineInstanceProvider, type Provisioned } from "../provider.ts";

// `container`: a host on this machine made by `galley hosts` (in the kitchen's fleet, named
// after the instance). Its code (./index.ts) loads only when a stack has such an instance.

const schema = v.strictObject({
  type: v.literal("container"),
  init: v.optional(v.picklist(["systemd", "sysv"])),
});

/** The `container` instance provider: a Linux container host on this machine (docs/hosts.md). */
export const containerProvider = defineInstanceProvider({
  schema,
  async provision(context, instances, log) {
    const results = new Map<string, Provisioned>();
    if (instances.length === 0) return results;
    const hosts = await import("./index.ts");
    for (const init of ["systemd", "sysv"] as const) {
      const group = instances.filter((i) => (i.provider.init ?? "systemd") === init);
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
  },
  async reach(context, instances) {
    const reached = new Map<string, Provisioned>();
    if (instances.length === 0) return reached;
    const { paths, fleet } = await (await import("./index.ts")).list(context.kitchen);
    for (const instance of instances) {
      const host = fleet?.host(instance.name);
      reached.set(
        instance.name,
        host?.status === "running"
          ? containerHost(instance.name, host.address, paths)
          : { ok: false, error: `host ${instance.name} is ${host?.status ?? "missing"} (galley hosts list)` },
      );
    }
    return reached;
  },
  async release(context, instances, log) {
    if (instances.length === 0) return;
    const hosts = await import("./index.ts");
    const { fleet } = await hosts.list(context.kitchen);
    const known = instances.map((i) => i.name).filter((name) => fleet?.host(name));
    if (known.length > 0) await hosts.onHosts(context.kitchen, "stop", known, log);
  },
});

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
