import { GalleyError } from "../../core/errors.ts";
import { type ServiceProvider, serviceCommand, statusByCommand } from "./provider.ts";

/** systemd units through `systemctl`: show for existence and activity, is-enabled for the boot state. */
export const systemd: ServiceProvider = {
  name: "systemd",

  async read(host, target) {
    const show = await host.exec(["systemctl", "show", "--property=LoadState,ActiveState", target.name]);
    if (show.exitCode !== 0) {
      throw new GalleyError(
        "EXEC_FAILED",
        `service[${target.name}]: systemctl show failed: ${show.stderr.trim()}`,
        {
          hint: 'is systemd running as PID 1? Otherwise set provider: "sysv"',
        },
      );
    }
    const properties = new Map(show.stdout.split("\n").map((line) => line.split("=", 2) as [string, string]));
    const load = properties.get("LoadState");
    if (load === "not-found" || load === undefined) return undefined;
    // is-enabled, unlike show, also answers for SysV scripts through systemd-sysv-install
    const enabled = await host.exec(["systemctl", "is-enabled", target.name]);
    const active = properties.get("ActiveState") ?? "";
    return {
      running:
        (await statusByCommand(host, target)) ?? ["active", "reloading", "refreshing"].includes(active),
      enabled: enabled.exitCode === 0,
      enabledState: enabled.stdout.trim() || load,
    };
  },

  async run(host, target, command, current) {
    if (command === "disable" && current.enabledState === "static") {
      throw new GalleyError("APPLY_FAILED", `service[${target.name}]: a static unit cannot be disabled`, {
        hint: "it has no [Install] section and starts only when another unit wants it; mask it or stop what wants it",
      });
    }
    await serviceCommand(host, target.name, ["systemctl", command, target.name]);
  },
};
