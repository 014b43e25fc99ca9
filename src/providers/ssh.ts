import * as os from "node:os";
import * as path from "node:path";
import * as v from "valibot";
import { targetDefaults } from "../hosts/target.ts";
import { defineInstanceProvider, type Provisioned, type ProviderContext } from "./provider.ts";

// `ssh`: a machine that exists already. Starting it means reaching it; stopping it leaves it
// running (Galley stops managing it).

const schema = v.strictObject({
  type: v.literal("ssh"),
  address: v.string(),
  user: v.optional(v.string()),
  port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535))),
  key: v.optional(v.string()),
  become: v.optional(v.boolean()),
  /** known_hosts file checked (relative to the stack file; default ~/.ssh/known_hosts) */
  known_hosts: v.optional(v.string()),
  host_key_checking: v.optional(v.picklist(["strict", "accept-new"])),
});

type SshSettings = v.InferOutput<typeof schema>;

/** The `ssh` instance provider: an existing machine reached over SSH. */
export const sshProvider = defineInstanceProvider({
  schema,
  async provision(context, instances) {
    return new Map(instances.map((i) => [i.name, reachable(context, i.name, i.provider)]));
  },
  async reach(context, instances) {
    return new Map(instances.map((i) => [i.name, reachable(context, i.name, i.provider)]));
  },
  async release() {},
});

function reachable(context: ProviderContext, name: string, provider: SshSettings): Provisioned {
  const user = provider.user ?? "root";
  const home = os.homedir();
  return {
    ok: true,
    address: provider.address,
    target: {
      ...targetDefaults,
      name,
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
