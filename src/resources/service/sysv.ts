import { GalleyError } from "../../core/errors.ts";
import type { Host } from "../../core/host.ts";
import { list } from "../../core/fsops.ts";
import { type ServiceProvider, serviceCommand, statusByCommand } from "./provider.ts";

/** The runlevels where an S link means "starts at boot". */
const bootRunlevels = ["2", "3", "4", "5"];

/**
 * SysV init scripts in /etc/init.d, run through Debian's `service` command; boot links through
 * `update-rc.d`. Status follows LSB: exit 0 running, 1 to 3 stopped.
 */
export const sysv: ServiceProvider = {
  name: "sysv",

  async read(host, target) {
    const script = await host.stat(`/etc/init.d/${target.name}`);
    if (!script || script.type === "directory") return undefined;
    const [running, enabled] = await Promise.all([isRunning(host, target), isEnabled(host, target.name)]);
    return { running, enabled };
  },

  async run(host, target, command) {
    const name = target.name;
    switch (command) {
      case "enable":
        // `defaults` creates the links from the script's LSB header when there are none; `enable` turns K links into S
        await serviceCommand(host, name, ["update-rc.d", name, "defaults"]);
        return serviceCommand(host, name, ["update-rc.d", name, "enable"]);
      case "disable":
        return serviceCommand(host, name, ["update-rc.d", name, "disable"]);
      default:
        return serviceCommand(host, name, ["service", name, command]);
    }
  },
};

async function isRunning(host: Host, target: { name: string; statusCommand?: string | undefined }) {
  const byCommand = await statusByCommand(host, target);
  if (byCommand !== undefined) return byCommand;
  const result = await host.exec(["service", target.name, "status"]);
  if (result.exitCode === 0) return true;
  if (result.exitCode >= 1 && result.exitCode <= 3) return false;
  throw new GalleyError(
    "EXEC_FAILED",
    `service[${target.name}]: cannot tell whether it runs: service ${target.name} status exited ${result.exitCode}`,
    { hint: 'the init script has no usable status action: set statusCommand, e.g. "pgrep -x mydaemon"' },
  );
}

async function isEnabled(host: Host, name: string): Promise<boolean> {
  const links = await Promise.all(bootRunlevels.map((level) => list(host, `/etc/rc${level}.d`)));
  return links.flat().some((link) => /^S\d\d/.test(link) && link.slice(3) === name);
}
